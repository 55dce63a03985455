"""Schema migrations (Alembic), configured from motcua's settings so no alembic.ini is needed."""
from __future__ import annotations

from alembic import command
from alembic.config import Config

from engine.config import REPO_ROOT, settings
from engine.db import get_engine


def alembic_config(url: str | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(REPO_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", url or settings().resolved_database_url())
    return cfg


def upgrade(url: str | None = None, revision: str = "head") -> None:
    url = url or settings().resolved_database_url()
    cfg = alembic_config(url)
    with get_engine(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
