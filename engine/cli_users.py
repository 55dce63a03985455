"""`motcua users`: accounts from the command line — list them, set a password (the first admin's, or
one an admin forgot). Exit status: 0 done, 1 the command ran and failed, 2 bad usage or bad input."""
from __future__ import annotations

import sys

import click
from rich.table import Table

from engine.cli_support import fail, out
from engine.errors import InvalidInput, MotcuaError, NotFound



@click.group("users")
def users() -> None:
    """User accounts: list, set a password."""


@users.command("list")
def users_list() -> None:
    """Every account: role, unit, whether it is active and has a password."""
    from sqlalchemy import select
    from engine import org
    from engine.db import session_scope
    from engine.models import User
    table = Table(title="Tài khoản")
    for col in ("Tên đăng nhập", "Họ tên", "Vai trò", "Đơn vị", "Hoạt động", "Có mật khẩu"):
        table.add_column(col)
    with session_scope() as s:
        for u in s.scalars(select(User).order_by(User.username)):
            table.add_row(u.username, u.full_name, u.role, org.unit(s, u.unit_id).code, "có" if u.active else "khóa",
                          "có" if u.password_hash else "chưa")
    out.print(table)


@users.command("set-password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set USERNAME's password (asked twice, not echoed); the user's sessions end."""
    from engine.admin import set_password
    from engine.db import session_scope
    from engine.dossiers import utcnow
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Mật khẩu mới", hide_input=True, confirmation_prompt="Nhập lại mật khẩu")
    try:
        with session_scope() as s:
            set_password(s, username=username, password=password, now=utcnow())
    except MotcuaError as exc:
        fail(exc, bad_usage=(InvalidInput, NotFound))
    out.print(f"đã đặt mật khẩu cho {username}")
