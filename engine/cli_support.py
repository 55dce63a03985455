"""What the command-line modules share: the two consoles and how an engine error ends a command."""
from __future__ import annotations

import sys
from typing import NoReturn

from rich.console import Console

from engine.errors import InvalidInput, MotcuaError

out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def fail(exc: MotcuaError, *, bad_usage: tuple[type[MotcuaError], ...] = (InvalidInput,)) -> NoReturn:
    """Print the error's message and code, and exit: 2 for the kinds the command counts as bad usage or bad
    input, 1 for the others (the command ran and found a problem)."""
    err.print(f"[red]Lỗi:[/red] {exc.message} ({exc.code})")
    sys.exit(2 if isinstance(exc, bad_usage) else 1)
