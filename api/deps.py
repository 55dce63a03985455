"""Dependencies of the routes: the database session (one transaction per request), the clock, the
authenticated user and role checks. Typed aliases keep the route signatures short."""
from __future__ import annotations

from datetime import datetime
from typing import Annotated, AsyncIterator, Callable

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session as OrmSession

from engine.auth import Unauthorized, user_from_token
from engine.db import session_factory
from engine.dossiers import utcnow
from engine.errors import Forbidden
from engine.models import User

oauth2 = OAuth2PasswordBearer(tokenUrl="/api/auth/token", auto_error=False)


async def get_db() -> AsyncIterator[OrmSession]:
    """A session for the request. Routes that change something call `commit` before answering, so a
    failed commit is the answer (never a 200 for something not stored); anything else is rolled back.
    `async def` spares a hop to the thread pool: creating a session touches no database. Dependencies
    that query stay plain `def`: in the event loop a query waiting on a SQLite lock would stall every
    other request, the one holding the lock included."""
    session = session_factory()()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


async def get_now() -> datetime:
    """The clock; tests replace it with one they control."""
    return utcnow()


Session = Annotated[OrmSession, Depends(get_db)]
Now = Annotated[datetime, Depends(get_now)]


def get_current_user(request: Request, db: Session, now: Now,
                     token: Annotated[str | None, Depends(oauth2)]) -> User:
    if not token:
        raise Unauthorized("Cần đăng nhập để dùng chức năng này", code="not_authenticated")
    user = user_from_token(db, token, now)
    request.state.user_id = user.id          # for the access log
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def require(*roles: str) -> Callable[[User], User]:
    """A route for some roles only: `user: Annotated[User, Depends(require("admin"))]`."""
    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise Forbidden("Chức năng này không dành cho vai trò của bạn", code="role_not_allowed")
        return user
    return check


def commit(db: OrmSession) -> None:
    db.commit()
