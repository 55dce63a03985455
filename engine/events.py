"""Append-only, hash-chained dossier events. Each event's hash covers the previous event's hash and its
own content, so editing or deleting any event breaks every later link; `verify_chain` names the first."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import Dossier, Event
from engine.records import Record


def event_hash(prev_hash: str, dossier_code: str, seq: int, at: datetime, kind: str, actor_id: int | None,
               data: dict[str, Any]) -> str:
    body = json.dumps({"dossier": dossier_code, "seq": seq, "at": at.astimezone(timezone.utc).isoformat(),
                       "kind": kind, "actor": actor_id, "data": data},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def new_event(dossier: Record, kind: str, actor_id: int | None, at: datetime, data: dict[str, Any]) -> Record:
    """The next event of the dossier's chain (to be inserted with the dossier's update)."""
    if not all(isinstance(v, (str, int, bool, type(None))) for v in data.values()):
        data = json.loads(json.dumps(data, default=str))    # exactly what the database will give back
    seq = dossier.last_event_seq + 1
    digest = event_hash(dossier.last_event_hash, dossier.code, seq, at, kind, actor_id, data)
    event = Record(Event.__table__, {"dossier_id": dossier.id, "seq": seq, "at": at, "kind": kind,
                                     "actor_id": actor_id, "data": data, "prev_hash": dossier.last_event_hash,
                                     "hash": digest}, new=True)
    dossier.last_event_seq, dossier.last_event_hash = seq, digest
    return event


@dataclass
class ChainBreak:
    dossier: str
    seq: int
    event_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"event #{self.seq} (id {self.event_id})" if self.event_id else f"after event #{self.seq}"
        return f"{self.dossier}: {where}: {self.reason}"


def verify_chain(db: Session, dossier_code: str | None = None) -> Iterator[ChainBreak]:
    """Yield the first break of each dossier's chain (edited content, a gap, a deleted tail)."""
    query = select(Dossier.id, Dossier.code, Dossier.last_event_seq, Dossier.last_event_hash).order_by(Dossier.id)
    if dossier_code:
        query = query.where(Dossier.code == dossier_code)
    for dossier_id, code, last_seq, last_hash in db.execute(query):
        brk = _verify_one(db, dossier_id, code, last_seq, last_hash)
        if brk:
            yield brk


def _verify_one(db: Session, dossier_id: int, code: str, last_seq: int, last_hash: str) -> ChainBreak | None:
    prev, expected_seq = "", 1
    # Plain rows, not ORM objects: what is in the database now, never an identity-map copy.
    events = Event.__table__
    for ev in db.execute(select(events).where(events.c.dossier_id == dossier_id).order_by(events.c.seq)):
        if ev.seq != expected_seq:
            return ChainBreak(code, expected_seq, None, f"event #{expected_seq} is missing")
        if ev.prev_hash != prev:
            return ChainBreak(code, ev.seq, ev.id, "does not link to the previous event")
        if event_hash(prev, code, ev.seq, ev.at, ev.kind, ev.actor_id, ev.data) != ev.hash:
            return ChainBreak(code, ev.seq, ev.id, "content changed after it was written")
        prev, expected_seq = ev.hash, expected_seq + 1
    if expected_seq - 1 != last_seq or prev != last_hash:
        return ChainBreak(code, expected_seq - 1, None,
                          f"the dossier records {last_seq} events; the chain ends at #{expected_seq - 1}")
    return None
