"""Run the whole suite twice: on SQLite, then on PostgreSQL (MOTCUA_TEST_PG_URL, database created here).
Exits non-zero if either run fails."""
from __future__ import annotations

import os
import subprocess
import sys

import psycopg
from sqlalchemy.engine import make_url


def ensure_database(url: str) -> None:
    u = make_url(url)
    admin = f"host={u.host or '127.0.0.1'} port={u.port or 5432} user={u.username or 'postgres'} dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (u.database,)).fetchone():
            conn.execute(f'CREATE DATABASE "{u.database}"')


def pytest(database: str, extra: list[str]) -> int:
    env = dict(os.environ, MOTCUA_TEST_DATABASE=database)
    print(f"\n=== test suite on {make_url(database).get_backend_name() if '://' in database else database} ===",
          flush=True)
    return subprocess.call([sys.executable, "-m", "pytest", *extra], env=env)


def main() -> int:
    extra = sys.argv[1:]
    pg_url = os.environ.get("MOTCUA_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/motcua_test")
    status_sqlite = pytest("sqlite", extra)
    ensure_database(pg_url)
    status_pg = pytest(pg_url, extra)
    print(f"\nSQLite run: {'passed' if status_sqlite == 0 else 'FAILED'}; "
          f"PostgreSQL run: {'passed' if status_pg == 0 else 'FAILED'}")
    return 1 if status_sqlite or status_pg else 0


if __name__ == "__main__":
    sys.exit(main())
