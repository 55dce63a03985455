"""Authentication without HTTP: argon2 password hashes, short-lived signed access tokens (JWT), rotating
refresh tokens stored as hashes, and a throttle shared by every process (it lives in the database)."""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from engine.config import settings
from engine.errors import InvalidInput, MotcuaError
from engine.models import RefreshToken, Throttle, User
from engine.records import Record

ACCESS_MINUTES = 15
REFRESH_DAYS = 7
_hasher = PasswordHasher()


class Unauthorized(MotcuaError):
    status = 401
    code = "unauthorized"


class TooManyAttempts(MotcuaError):
    status = 429
    code = "too_many_attempts"


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise InvalidInput("Mật khẩu phải có ít nhất 8 ký tự", code="password_too_short")
    return _hasher.hash(password)


def password_ok(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def secret_key() -> str:
    """MOTCUA_SECRET_KEY, or a key generated once into the data directory (the embedded default)."""
    s = settings()
    if s.secret_key:
        return s.secret_key
    path: Path = s.data_dir / "secret.key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


# --- throttle ---------------------------------------------------------------------------------------

T = Throttle.__table__


def _throttle_row(db: Session, key: str) -> Record | None:
    query = select(T).where(T.c.key == key)
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = db.connection().execute(query).first()
    return Record(T, row._mapping) if row else None


def check_throttle(db: Session, key: str, now: datetime) -> None:
    row = _throttle_row(db, key)
    if row and row.blocked_until and row.blocked_until > now:
        minutes = max(1, int((row.blocked_until - now).total_seconds() // 60) + 1)
        raise TooManyAttempts(f"Quá nhiều lần thử; hãy thử lại sau {minutes} phút", data={"retry_after_minutes": minutes})


def count_hit(db: Session, key: str, now: datetime, *, limit: int, window: timedelta, block: timedelta) -> bool:
    """Count one event for `key`; the `limit`-th event in the window blocks the key. True when blocked."""
    row = _throttle_row(db, key)
    if row is None or now - row.window_started_at > window:
        row = row or Record(T, {"key": key}, new=True)
        row.count, row.window_started_at, row.blocked_until = 1, now, None
    else:
        row.count += 1
        if row.count >= limit:
            row.blocked_until = now + block
    save_throttle(db, row)
    return bool(row.blocked_until and row.blocked_until > now)


def save_throttle(db: Session, row: Record) -> None:
    conn = db.connection()
    if row.is_new:
        conn.execute(insert(T).values(**row.changes()))
        row.mark_saved()
    else:
        changes = row.changes()
        if changes:
            conn.execute(update(T).where(T.c.key == row.key).values(**changes))
            row.mark_saved()


def clear_throttle(db: Session, key: str) -> None:
    db.connection().execute(delete(T).where(T.c.key == key))


# --- login and tokens -------------------------------------------------------------------------------

LOGIN_LIMIT, LOGIN_WINDOW, LOGIN_BLOCK = 5, timedelta(minutes=15), timedelta(minutes=15)


@dataclass
class Tokens:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


def login(db: Session, *, username: str, password: str, client: str, now: datetime) -> Tokens:
    return _issue(db, authenticate(db, username=username, password=password, client=client, now=now), now)


def authenticate(db: Session, *, username: str, password: str, client: str, now: datetime) -> User:
    """Five failures in 15 minutes, for a username or for a client address, block it for 15 minutes.
    The failure is committed by the caller even though the login is refused."""
    keys = (f"login:user:{username.lower()}", f"login:ip:{client}")
    for key in keys:
        check_throttle(db, key, now)
    user = db.scalar(select(User).where(User.username == username))
    if user is None or not password_ok(user.password_hash, password) or not user.active:
        for key in keys:
            count_hit(db, key, now, limit=LOGIN_LIMIT, window=LOGIN_WINDOW, block=LOGIN_BLOCK)
        raise Unauthorized("Tên đăng nhập hoặc mật khẩu không đúng, hoặc tài khoản đã bị khóa",
                           code="login_failed")
    clear_throttle(db, keys[0])
    return user


def _issue(db: Session, user: User, now: datetime) -> Tokens:
    expires = now + timedelta(minutes=ACCESS_MINUTES)
    access = jwt.encode({"sub": str(user.id), "role": user.role, "unit": user.unit_id, "iat": int(now.timestamp()),
                         "exp": int(expires.timestamp()), "typ": "access"}, secret_key(), algorithm="HS256")
    refresh = secrets.token_urlsafe(32)
    db.add(RefreshToken(user_id=user.id, token_hash=_digest(refresh), issued_at=now,
                        expires_at=now + timedelta(days=REFRESH_DAYS)))
    db.flush()
    return Tokens(access, refresh, ACCESS_MINUTES * 60)


def refresh(db: Session, *, token: str, now: datetime) -> Tokens:
    """Rotate: the refresh token is spent and a new pair issued."""
    row = db.scalar(select(RefreshToken).where(RefreshToken.token_hash == _digest(token)))
    if row is None or row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("Phiên đăng nhập đã hết hạn; hãy đăng nhập lại", code="refresh_invalid")
    user = db.get(User, row.user_id)
    if user is None or not user.active:
        raise Unauthorized("Tài khoản đã bị khóa", code="user_disabled")
    row.revoked_at = now
    return _issue(db, user, now)


def user_from_token(db: Session, token: str, now: datetime) -> User:
    claims = _claims(token, "access", now, invalid=("Mã truy cập không hợp lệ; hãy đăng nhập lại", "token_invalid"),
                     expired=("Phiên đăng nhập đã hết hạn; hãy đăng nhập lại", "token_expired"))
    return _active_user(db, claims)


def _claims(token: str, typ: str, now: datetime, *, invalid: tuple[str, str], expired: tuple[str, str]) -> dict:
    """The claims of a token we signed, of that type, not expired at `now` (the clock is ours to inject,
    so PyJWT's own expiry check, on the wall clock, is off)."""
    try:
        claims = jwt.decode(token, secret_key(), algorithms=["HS256"], options={"verify_exp": False})
    except jwt.PyJWTError:
        raise Unauthorized(invalid[0], code=invalid[1])
    if claims.get("typ") != typ or claims.get("exp", 0) <= now.timestamp():
        raise Unauthorized(expired[0], code=expired[1])
    return claims


def _active_user(db: Session, claims: dict) -> User:
    user = db.get(User, int(claims["sub"]))
    if user is None or not user.active:
        raise Unauthorized("Tài khoản đã bị khóa", code="user_disabled")
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- console sessions -------------------------------------------------------------------------------
# The web console keeps the user in a signed cookie instead of a bearer header. The session ends after
# SESSION_IDLE_MINUTES without a request (a counter PC is shared) and SESSION_MAX_HOURS after login
# whatever happens; the same user checks as the API apply on every request (disabled → out).

SESSION_IDLE_MINUTES = 30
SESSION_MAX_HOURS = 10


@dataclass
class ConsoleSession:
    user: User
    csrf: str
    renewed: str | None = None       # a fresh cookie value when the idle window was extended


def console_login(db: Session, *, username: str, password: str, client: str, now: datetime) -> str:
    """Check the password exactly as the API's login does (throttle included); answer a session token."""
    user = authenticate(db, username=username, password=password, client=client, now=now)
    return _session_token(user, now, started=now, csrf=secrets.token_urlsafe(24))


def _session_token(user: User, now: datetime, *, started: datetime, csrf: str) -> str:
    expires = min(now + timedelta(minutes=SESSION_IDLE_MINUTES), started + timedelta(hours=SESSION_MAX_HOURS))
    return jwt.encode({"sub": str(user.id), "iat": int(now.timestamp()), "start": int(started.timestamp()),
                       "exp": int(expires.timestamp()), "csrf": csrf, "typ": "console"},
                      secret_key(), algorithm="HS256")


def console_user(db: Session, token: str, now: datetime) -> ConsoleSession:
    claims = _claims(token, "console", now,
                     invalid=("Phiên đăng nhập không hợp lệ; hãy đăng nhập lại", "session_invalid"),
                     expired=("Phiên làm việc đã hết hạn; hãy đăng nhập lại", "session_expired"))
    user = _active_user(db, claims)
    session = ConsoleSession(user, claims["csrf"])
    if now.timestamp() - claims["iat"] >= 60:          # slide the idle window at most once a minute
        started = datetime.fromtimestamp(claims["start"], now.tzinfo)
        session.renewed = _session_token(user, now, started=started, csrf=claims["csrf"])
    return session
