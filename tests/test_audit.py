"""The event chain: any edit or deletion after the fact is found, and the first broken event named."""
from __future__ import annotations

from sqlalchemy import select, text

from engine import dossiers as cmd
from engine.events import verify_chain
from engine.models import Event
from tests.conftest import vn
from tests.test_lifecycle import do, receive


def _dossier_with_events(db, users) -> str:
    d = receive(db, users)
    do(db, cmd.complete_step, code=d.code, actor=users["pp.cv"], decision="dat", now=vn(2025, 4, 24, 9, 30))
    do(db, cmd.complete_step, code=d.code, actor=users["pp.ld"], decision="dong_y", now=vn(2025, 4, 24, 10, 0))
    return d.code


def test_intact_chain_verifies(db, users):
    code = _dossier_with_events(db, users)
    assert list(verify_chain(db, code)) == []
    events = db.scalars(select(Event).order_by(Event.seq)).all()
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]


def test_an_edited_event_is_named(db, users):
    code = _dossier_with_events(db, users)
    second = db.scalar(select(Event).where(Event.seq == 2))
    db.execute(text("UPDATE events SET kind = 'step_claimed' WHERE id = :id"), {"id": second.id})
    db.commit()
    breaks = list(verify_chain(db, code))
    assert len(breaks) == 1 and breaks[0].seq == 2 and "changed" in breaks[0].reason


def test_a_deleted_last_event_is_found(db, users):
    code = _dossier_with_events(db, users)
    db.execute(text("DELETE FROM events WHERE seq = 3"))
    db.commit()
    breaks = list(verify_chain(db, code))
    assert len(breaks) == 1 and "records 3 events" in breaks[0].reason


def test_a_deleted_middle_event_is_found(db, users):
    code = _dossier_with_events(db, users)
    db.execute(text("DELETE FROM events WHERE seq = 2"))
    db.commit()
    [brk] = list(verify_chain(db, code))
    assert brk.seq == 2 and "missing" in brk.reason
