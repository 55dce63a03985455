"""Configuration: one pydantic-settings class, read from MOTCUA_* environment variables."""
from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOTCUA_", extra="ignore")

    data_dir: Path = Path("var")
    database_url: str | None = None
    broker_url: str | None = None
    timezone: str = "Asia/Ho_Chi_Minh"
    secret_key: str | None = None

    @field_validator("secret_key")
    @classmethod
    def _long_enough(cls, value: str | None) -> str | None:
        # HS256 wants a key of at least 32 bytes (RFC 7518 §3.2); a short one is a guessable one.
        if value is not None and len(value.encode()) < 32:
            raise ValueError("MOTCUA_SECRET_KEY must be at least 32 bytes long (e.g. `openssl rand -base64 48`)")
        return value

    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "motcua"
    s3_secure: bool = False

    # Procedure catalog and organisation data shipped with the code; operators may point elsewhere.
    catalog_dir: Path = REPO_ROOT / "bpmn"
    org_dir: Path = REPO_ROOT / "data" / "org"
    # The announced swap days; extra operator files are added with calendar_extra (os.pathsep-separated).
    calendar_overrides: Path = REPO_ROOT / "data" / "calendar" / "vn-calendar-overrides.yaml"
    calendar_extra: str = ""
    office_hours: str = "07:30-11:30,13:30-17:00"

    # Circular 01/2018 Art. 19; Circular 03/2025 re-specifies it (unconfirmed), so it is a setting.
    dossier_code_format: str = "{agency}-{date:%y%m%d}-{serial:04d}"

    # Sandbox limits for BPMN expressions and scripts.
    script_max_iterations: int = 10_000
    script_timeout_seconds: float = 0.5

    # Bound on supplement loops per dossier (each loop grows the workflow instance).
    max_supplement_rounds: int = 10

    # SLA timers and notifications (issue 3). Without a broker, timers and the outbox run in-process.
    scan_interval_seconds: int = 60
    scan_batch: int = 1000
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_sender: str = "motcua@localhost"
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    # The SMS/Zalo channel (an HTTP gateway) is off unless switched on.
    sms_enabled: bool = False
    sms_gateway_url: str | None = None
    sms_gateway_token: str | None = None

    # Documents (issue 4). Uploads: size and page limits. Object store: S3 region (so presigning needs no
    # round trip), bounded timeout and retries, lifetime of download links; orphans older than the grace
    # period are collected. Signing: production PEM key, certificate, chain (os.pathsep-separated) and
    # trust roots; unset, the development key and CA under data_dir/keys (`motcua docs keys`).
    max_upload_bytes: int = 20 * 1024 * 1024
    max_pdf_pages: int = 500
    s3_region: str = "us-east-1"
    s3_timeout_seconds: float = 10.0
    s3_retries: int = 2
    presign_seconds: int = 300
    orphan_grace_hours: float = 24.0
    signing_key: Path | None = None
    signing_cert: Path | None = None
    signing_chain: str = ""
    signing_key_passphrase: str | None = None
    signing_trust_roots: str = ""

    # Indicators (issue 6): the reform plan's targets per year (data, not code), and the working days a
    # unit has to answer feedback (phản ánh, kiến nghị).
    kpi_targets: Path = REPO_ROOT / "data" / "kpi-targets.yaml"
    feedback_deadline_working_days: int = 15

    # Web console (issue 7): the address citizens reach the site at. The receipt's QR code carries a link to
    # its lookup page (`{public_url}/tra-cuu?…`), so it must be the public address, not an internal one.
    public_url: str = "http://localhost:8000"

    # Prometheus metrics: with a token set, /metrics answers only `Authorization: Bearer <token>` (the
    # request counts by route tell outsiders how busy each office is); unset, it is open, for a scraper on
    # a private network.
    metrics_token: str | None = None

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'motcua.db').resolve()}"

    def calendar_files(self) -> list[Path]:
        extra = [Path(p) for p in self.calendar_extra.split(":") if p.strip()]
        # Days an admin added through the API (engine.admin), last so that they win; only once written.
        operator = self.data_dir / "calendar-overrides.yaml"
        return [self.calendar_overrides, *extra, *([operator] if operator.is_file() else [])]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


_current: Settings | None = None


def settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    global _current
    if _current is None:
        _current = Settings()
    return _current


def set_settings(new: Settings | None) -> None:
    """Replace the process-wide settings (tests, CLI options); None re-reads the environment."""
    global _current
    _current = new
