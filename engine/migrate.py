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


def schema_problem(url: str | None = None) -> str | None:
    """What is wrong with the database's schema for this code, in words for the operator; None when it is
    at the latest migration. Commands call it when a query fails, to tell a missing `db upgrade` from a bug."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    url = url or settings().resolved_database_url()
    with get_engine(url).connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    if current == head:
        return None
    if current is None:
        return "cơ sở dữ liệu chưa có lược đồ của motcua (the database has no motcua schema yet)"
    return (f"lược đồ cơ sở dữ liệu ở bản {current}, mã nguồn cần bản {head} "
            f"(the schema is at revision {current}, this code needs {head})")
