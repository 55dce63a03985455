"""Notifications through an outbox. A command writes the message rows in its own transaction (so a
notification exists exactly when its change does); a task delivers them later, retrying with backoff.
Delivery never touches the dossier: a failing mail server cannot block or roll back a command."""
from __future__ import annotations

import smtplib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Protocol

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.config import settings
from engine.models import OutboxMessage
from engine.records import Record, save

O = OutboxMessage.__table__
MAX_ATTEMPTS = 10

# Subject and body per kind, in Vietnamese; fields come from the dossier and the change.
TEMPLATES: dict[str, tuple[str, str]] = {
    "received": ("Đã tiếp nhận hồ sơ {code}",
                 "Kính gửi {name},\nHồ sơ {code} ({procedure}) đã được tiếp nhận lúc {received}.\n"
                 "Ngày hẹn trả kết quả: {appointment}.\nTra cứu hồ sơ bằng mã {code}."),
    "supplement_requested": ("Hồ sơ {code} cần bổ sung",
                             "Kính gửi {name},\nHồ sơ {code} cần bổ sung: {missing}.\nLý do: {reason}.\n"
                             "Thời gian chờ bổ sung không tính vào thời hạn giải quyết."),
    "extended": ("Thư xin lỗi và hẹn lại ngày trả kết quả hồ sơ {code}",
                 "Kính gửi {name},\nHồ sơ {code} chưa giải quyết xong đúng hẹn. Lý do: {reason}.\n"
                 "Ngày hẹn mới: {appointment}. Xin lỗi ông/bà vì sự chậm trễ."),
    "result_ready": ("Hồ sơ {code} đã có kết quả",
                     "Kính gửi {name},\nHồ sơ {code} ({procedure}) đã có kết quả; mời ông/bà nhận kết quả."),
    "step_assigned": ("Được giao xử lý hồ sơ {code}",
                      "Đồng chí được giao bước \"{step}\" của hồ sơ {code}; hạn xử lý: {due}."),
    "step_warning": ("Sắp đến hạn: hồ sơ {code}",
                     "Bước \"{step}\" của hồ sơ {code} đến hạn lúc {due}. Đề nghị hoàn thành đúng hạn."),
}


def _local(value: datetime | None) -> str:
    return value.astimezone(settings().tz).strftime("%H:%M ngày %d/%m/%Y") if value else ""


def message(kind: str, *, dossier_id: int | None, key: str, channel: str, recipient: str, now: datetime,
            **fields: Any) -> Record:
    subject, body = TEMPLATES[kind]
    values = {k: _local(v) if isinstance(v, datetime) else v for k, v in fields.items()}
    return Record(O, dict(dedupe_key=f"{key}:{channel}:{recipient}"[:160], dossier_id=dossier_id, channel=channel,
                          recipient=recipient, subject=subject.format(**values), body=body.format(**values),
                          created_at=now, attempts=0, next_attempt_at=now, delivered_at=None, failed=False,
                          last_error=None), new=True)


def to_citizen(dossier: Record, kind: str, *, now: datetime, procedure: str, **fields: Any) -> list[Record]:
    """Messages to the applicant by each channel they gave and that is switched on."""
    applicant = dossier.applicant
    key = f"{dossier.code}:{kind}:{dossier.last_event_seq}"
    common = dict(dossier_id=dossier.id, key=key, now=now, code=dossier.code, name=applicant["full_name"],
                  procedure=procedure, **fields)
    out = []
    if applicant.get("email"):
        out.append(message(kind, channel="email", recipient=applicant["email"], **common))
    if applicant.get("phone") and settings().sms_enabled:
        out.append(message(kind, channel="sms", recipient=applicant["phone"], **common))
    return out


def to_official(email: str | None, kind: str, *, dossier_id: int | None, key: str, now: datetime,
                **fields: Any) -> list[Record]:
    if not email:
        return []
    return [message(kind, dossier_id=dossier_id, key=key, channel="email", recipient=email, now=now, **fields)]


# --- delivery ---------------------------------------------------------------------------------------

class Channel(Protocol):
    def send(self, recipient: str, subject: str, body: str) -> None: ...


class EmailChannel:
    """Plain SMTP (STARTTLS and login when configured)."""

    def __init__(self, host: str, port: int, sender: str, *, user: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout: float = 10.0):
        self.host, self.port, self.sender = host, port, sender
        self.user, self.password, self.starttls, self.timeout = user, password, starttls, timeout

    def send(self, recipient: str, subject: str, body: str) -> None:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = self.sender, recipient, subject
        msg.set_content(body)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(msg)


class SmsChannel:
    """An SMS/Zalo gateway reached over HTTP: POST {"to", "text"} with a bearer token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0):
        self.url, self.token, self.timeout = url, token, timeout

    def send(self, recipient: str, subject: str, body: str) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        response = httpx.post(self.url, json={"to": recipient, "text": f"{subject}\n{body}"}, headers=headers,
                              timeout=self.timeout)
        response.raise_for_status()


def configured_channels() -> dict[str, Channel]:
    s = settings()
    channels: dict[str, Channel] = {}
    if s.smtp_host:
        channels["email"] = EmailChannel(s.smtp_host, s.smtp_port, s.smtp_sender, user=s.smtp_user,
                                         password=s.smtp_password, starttls=s.smtp_starttls)
    if s.sms_enabled and s.sms_gateway_url:
        channels["sms"] = SmsChannel(s.sms_gateway_url, s.sms_gateway_token)
    return channels


@dataclass
class Delivery:
    delivered: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int) -> timedelta:
    """1, 2, 4 … minutes, at most an hour."""
    return timedelta(minutes=min(2 ** (attempts - 1), 60))


def deliver_pending(session_factory, *, now: datetime, channels: dict[str, Channel] | None = None,
                    limit: int = 100) -> Delivery:
    """Send what is due, each message in its own short transaction (its row locked, so two workers
    never send the same one). A channel that is not configured leaves its messages waiting."""
    channels = configured_channels() if channels is None else channels
    result = Delivery()
    with session_factory() as db:
        ids = [row.id for row in db.execute(
            select(O.c.id).where(O.c.delivered_at.is_(None), O.c.failed.is_(False), O.c.next_attempt_at <= now,
                                 O.c.channel.in_(list(channels))).order_by(O.c.next_attempt_at).limit(limit))]
    for message_id in ids:
        with session_factory() as db, db.begin():
            _deliver_one(db, message_id, now, channels, result)
    return result


def _deliver_one(db: Session, message_id: int, now: datetime, channels: dict[str, Channel], result: Delivery) -> None:
    query = select(O).where(O.c.id == message_id, O.c.delivered_at.is_(None), O.c.failed.is_(False))
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    row = db.execute(query).first()
    if row is None:          # another worker has it, or it was delivered meanwhile
        return
    msg = Record(O, row._mapping)
    try:
        channels[msg.channel].send(msg.recipient, msg.subject, msg.body)
    except Exception as exc:     # any failure of the channel: note it and retry later
        msg.attempts += 1
        msg.last_error = f"{exc.__class__.__name__}: {exc}"[:1000]
        if msg.attempts >= MAX_ATTEMPTS:
            msg.failed = True
            result.failed += 1
        else:
            msg.next_attempt_at = now + backoff(msg.attempts)
            result.retried += 1
        result.errors.append(msg.last_error)
    else:
        msg.attempts += 1
        msg.delivered_at = now
        result.delivered += 1
    save(db.connection(), msg)
