"""Outbox delivery: real SMTP to a server on loopback, retries with backoff after a failure, the SMS
gateway over HTTP, and commands that commit whatever the broker or the mail server are doing."""
from __future__ import annotations

import json
import socket
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from engine.db import session_factory
from engine.models import OutboxMessage
from engine.notify import EmailChannel, SmsChannel, deliver_pending
from tests.conftest import vn
from tests.test_lifecycle import receive

CITIZEN = {"full_name": "Trần Thị Bích", "citizen_id": "052190001234", "email": "bich@example.vn",
           "phone": "0905123456"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 OK"


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def outbox(db) -> list[OutboxMessage]:
    db.rollback()        # a fresh snapshot: the deliveries committed on other connections
    db.expire_all()
    return list(db.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_smtp_delivery_to_a_loopback_server(db, db_url, users, smtp_server):
    controller, inbox = smtp_server
    d = receive(db, users, officer="ts.motcua", applicant=CITIZEN)
    channel = EmailChannel("127.0.0.1", controller.port, "motcua@tayson.example.vn")
    result = deliver_pending(session_factory(db_url), now=vn(2025, 4, 24, 9, 1), channels={"email": channel})
    assert (result.delivered, result.retried) == (1, 0)
    [(recipients, content)] = inbox.messages
    assert recipients == ["bich@example.vn"]
    assert d.code in content and "motcua@tayson.example.vn" in content
    [msg] = outbox(db)
    assert msg.delivered_at == vn(2025, 4, 24, 9, 1) and msg.attempts == 1
    # Delivered once: a second run sends nothing.
    again = deliver_pending(session_factory(db_url), now=vn(2025, 4, 24, 9, 2), channels={"email": channel})
    assert again.delivered == 0 and len(inbox.messages) == 1


def test_a_failed_delivery_is_retried_with_backoff(db, db_url, users, smtp_server):
    controller, inbox = smtp_server
    receive(db, users, officer="ts.motcua", applicant=CITIZEN)
    dead = EmailChannel("127.0.0.1", free_port(), "motcua@localhost", timeout=2)     # nothing listens there
    first = deliver_pending(session_factory(db_url), now=vn(2025, 4, 24, 9, 1), channels={"email": dead})
    assert (first.delivered, first.retried) == (0, 1)
    [msg] = outbox(db)
    assert msg.attempts == 1 and msg.next_attempt_at == vn(2025, 4, 24, 9, 2) and "ConnectionRefused" in msg.last_error
    live = EmailChannel("127.0.0.1", controller.port, "motcua@localhost")
    early = deliver_pending(session_factory(db_url), now=vn(2025, 4, 24, 9, 1, 30), channels={"email": live})
    assert early.delivered == 0                      # not due again yet
    on_time = deliver_pending(session_factory(db_url), now=vn(2025, 4, 24, 9, 2), channels={"email": live})
    assert on_time.delivered == 1 and len(inbox.messages) == 1
    assert outbox(db)[0].attempts == 2


def test_backoff_grows_and_gives_up(db, db_url, users):
    receive(db, users, officer="ts.motcua", applicant=CITIZEN)
    dead = EmailChannel("127.0.0.1", free_port(), "motcua@localhost", timeout=2)
    now = vn(2025, 4, 24, 9, 0)
    waits = []
    for _ in range(10):
        deliver_pending(session_factory(db_url), now=now, channels={"email": dead})
        [msg] = outbox(db)
        if msg.failed:
            break
        waits.append(msg.next_attempt_at - now)
        now = msg.next_attempt_at
    assert waits[:4] == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=4), timedelta(minutes=8)]
    assert waits[-1] == timedelta(minutes=60) and msg.failed and msg.attempts == 10


def test_sms_gateway_channel(db, db_url, users):
    received = []

    class Gateway(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.headers.get("Authorization"),
                             json.loads(self.rfile.read(int(self.headers["Content-Length"])))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        SmsChannel(f"http://127.0.0.1:{server.server_port}/sms", token="t0k").send("0905123456", "Hồ sơ", "Nội dung")
    finally:
        server.shutdown()
    assert received == [("Bearer t0k", {"to": "0905123456", "text": "Hồ sơ\nNội dung"})]


def test_sms_is_off_by_default(db, users):
    receive(db, users, officer="ts.motcua", applicant=CITIZEN)
    assert [m.channel for m in outbox(db)] == ["email"]


def test_commands_commit_with_the_broker_down(db, users):
    """The engine never talks to the broker inside a command: a dead Redis changes nothing."""
    from engine.config import Settings, set_settings, settings
    from engine.worker import make_app
    before = settings()
    try:
        set_settings(Settings(**{**before.model_dump(), "broker_url": f"redis://127.0.0.1:{free_port()}/0"}))
        assert make_app().conf.task_always_eager is False
        d = receive(db, users, officer="ts.motcua", applicant=CITIZEN)
    finally:
        set_settings(before)
    assert d.status == "processing"
    assert [m.delivered_at for m in outbox(db)] == [None]       # waiting for the worker
