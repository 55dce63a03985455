"""SQLAlchemy models: organisation, procedure versions, dossiers and what their lifecycle writes.

Times are stored as UTC and returned timezone-aware. The dossier row carries a version column: every
command bumps it, so two concurrent commands on one dossier cannot both commit (optimistic locking)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import (JSON, Boolean, Date, DateTime, ForeignKey, Index, Integer, String, Text,
                        UniqueConstraint, text)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; stored naive-UTC so SQLite and PostgreSQL agree."""
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


# --- organisation -----------------------------------------------------------------------------------

ROLES = ("counter", "specialist", "leader", "supervisor", "admin")
LEVELS = ("province", "district", "commune", "department")


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    level: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    # Agency code used in dossier codes (Circular 01/2018 Art. 19); departments inherit their parent's.
    agency_code: Mapped[str | None] = mapped_column(String(64))
    one_stop: Mapped[bool] = mapped_column(Boolean, default=False)
    office_hours: Mapped[str | None] = mapped_column(String(64))
    fields: Mapped[list[Any]] = mapped_column(default=list)
    org_set: Mapped[str] = mapped_column(String(64))
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    sample: Mapped[bool] = mapped_column(Boolean, default=False)
    # The place name (địa danh) its documents are dated at, "Tây Sơn, ngày …"; units inherit their parent's.
    place: Mapped[str | None] = mapped_column(String(128))

    parent: Mapped[Unit | None] = relationship(remote_side="Unit.id")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    email: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))    # argon2; none: cannot log in

    unit: Mapped[Unit] = relationship(lazy="joined")


# --- procedures -------------------------------------------------------------------------------------

class ProcedureVersion(Base):
    """One immutable version of a procedure: its definition, BPMN XML and serialized spec, stored once."""
    __tablename__ = "procedure_versions"
    __table_args__ = (UniqueConstraint("code", "version"), UniqueConstraint("code", "sha256"))
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), index=True)
    version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(500))
    field: Mapped[str] = mapped_column(String(255))
    definition: Mapped[dict[str, Any]] = mapped_column()
    process_id: Mapped[str] = mapped_column(String(128))
    # Large and needed only to build the spec cache or show the diagram: not loaded with every dossier.
    bpmn_xml: Mapped[str] = mapped_column(Text, deferred=True)
    xml_sha256: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    spec_json: Mapped[str] = mapped_column(Text, deferred=True)
    effective_from: Mapped[date | None] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    source: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column()


# --- dossiers ---------------------------------------------------------------------------------------

DOSSIER_STATUSES = ("processing", "waiting_supplement", "result_ready", "returned", "refused", "stopped")
CHANNELS = ("counter", "post", "online")


class Dossier(Base):
    __tablename__ = "dossiers"
    __table_args__ = (
        Index("ix_dossiers_next_fire", "next_fire_at", postgresql_where=text("next_fire_at IS NOT NULL"),
              sqlite_where=text("next_fire_at IS NOT NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    procedure_version_id: Mapped[int] = mapped_column(ForeignKey("procedure_versions.id"))
    receiving_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    handling_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    received_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[str] = mapped_column(String(24), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    applicant: Mapped[dict[str, Any]] = mapped_column()
    components: Mapped[list[Any]] = mapped_column(default=list)
    received_at: Mapped[datetime] = mapped_column(index=True)
    # The appointment (ngày hẹn trả) and the working minutes the procedure grants, kept so any deadline
    # can be recomputed from the clock log (pauses, extension).
    due_at: Mapped[datetime] = mapped_column()
    warn_at: Mapped[datetime | None] = mapped_column()
    budget_minutes: Mapped[int] = mapped_column(Integer)
    original_due_at: Mapped[datetime] = mapped_column()
    paused_at: Mapped[datetime | None] = mapped_column()
    supplement_count: Mapped[int] = mapped_column(Integer, default=0)
    extended_at: Mapped[datetime | None] = mapped_column()
    extension: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    finished_at: Mapped[datetime | None] = mapped_column()
    outcome: Mapped[str | None] = mapped_column(String(16))
    # The appointment as a timer: when it next fires (warning, then overdue), and when each fired.
    next_fire_at: Mapped[datetime | None] = mapped_column()
    warned_at: Mapped[datetime | None] = mapped_column()
    overdue_at: Mapped[datetime | None] = mapped_column()
    workflow_state: Mapped[str] = mapped_column(Text)
    last_event_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_event_hash: Mapped[str] = mapped_column(String(64), default="")
    # Printed on the receipt: with the dossier code it lets the citizen look the dossier up.
    lookup_code: Mapped[str | None] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    __mapper_args__ = {"version_id_col": version}

    procedure_version: Mapped[ProcedureVersion] = relationship()
    receiving_unit: Mapped[Unit] = relationship(foreign_keys=[receiving_unit_id])
    handling_unit: Mapped[Unit] = relationship(foreign_keys=[handling_unit_id])
    steps: Mapped[list[Step]] = relationship(back_populates="dossier", order_by="Step.id",
                                             cascade="all, delete-orphan")


STEP_STATES = ("ready", "completed", "cancelled")


class Step(Base):
    """A user task of the dossier's workflow as the officials see it: who holds it, its deadline
    (a control-sheet deadline) and how it ended."""
    __tablename__ = "steps"
    __table_args__ = (
        # Open deadlines by the time they next fire: the timer scan reads only these.
        Index("ix_steps_next_fire", "next_fire_at", postgresql_where=text("next_fire_at IS NOT NULL"),
              sqlite_where=text("next_fire_at IS NOT NULL")),
        Index("ix_steps_inbox", "unit_id", "role", "state"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    task_id: Mapped[str] = mapped_column(String(36))
    bpmn_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(12))
    started_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime | None] = mapped_column()
    warn_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    timing: Mapped[str | None] = mapped_column(String(8))
    next_fire_at: Mapped[datetime | None] = mapped_column()
    warned_at: Mapped[datetime | None] = mapped_column()
    overdue_at: Mapped[datetime | None] = mapped_column()

    dossier: Mapped[Dossier] = relationship(back_populates="steps")


class Pause(Base):
    """A stretch of time not counted against the unit (waiting for the citizen's supplement)."""
    __tablename__ = "pauses"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    started_at: Mapped[datetime] = mapped_column()
    ended_at: Mapped[datetime | None] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    remaining_minutes: Mapped[int] = mapped_column(Integer)
    resume_mode: Mapped[str] = mapped_column(String(12))
    missing: Mapped[list[Any]] = mapped_column(default=list)

    dossier: Mapped[Dossier] = relationship()



class ControlSheetRow(Base):
    """Phiếu kiểm soát quá trình giải quyết hồ sơ: one row per hand-over."""
    __tablename__ = "control_sheet"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16))  # handover | transfer | inter_agency | return
    step_name: Mapped[str] = mapped_column(String(255))
    giver_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    giver_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    receiver_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    receiver_step: Mapped[str | None] = mapped_column(String(255))
    step_due_at: Mapped[datetime | None] = mapped_column()
    timing: Mapped[str | None] = mapped_column(String(8))  # early | on_time | late
    note: Mapped[str | None] = mapped_column(Text)

    dossier: Mapped[Dossier] = relationship()



class Event(Base):
    """Append-only, hash-chained per dossier."""
    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("dossier_id", "seq"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict[str, Any]] = mapped_column()
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    dossier: Mapped[Dossier] = relationship()



# --- SLA timers, accountability, notifications (issue 3) --------------------------------------------

class TimerFiring(Base):
    """A warning or overdue timer that fired. The unique key makes firing exactly-once: a second
    attempt (another beat, a retried task) fails its transaction instead of writing twice."""
    __tablename__ = "timer_firings"
    __table_args__ = (UniqueConstraint("target", "target_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))   # no index: written in bulk, read by key
    target: Mapped[str] = mapped_column(String(8))     # dossier | step
    target_id: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))       # warning | overdue
    due_at: Mapped[datetime] = mapped_column()
    fired_at: Mapped[datetime] = mapped_column()


class AccountabilityRecord(Base):
    """A step that went overdue, against the unit and the official who held it. Never edited: what
    follows (finish, cause, review) is appended as entries, each also an event of the dossier's chain."""
    __tablename__ = "accountability_records"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), index=True)
    step_id: Mapped[int] = mapped_column(ForeignKey("steps.id"), unique=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    due_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column()


ACCOUNTABILITY_ENTRIES = ("finished", "cause", "review")
REVIEW_OUTCOMES = ("explained", "accepted", "reminded", "disciplinary_proposal")


class AccountabilityEntry(Base):
    __tablename__ = "accountability_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("accountability_records.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column()
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    data: Mapped[dict[str, Any]] = mapped_column()


class OutboxMessage(Base):
    """A notification written in the same transaction as the change it reports, delivered later by a
    task; the dedupe key makes each one be written once."""
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "next_attempt_at", postgresql_where=text("delivered_at IS NULL AND failed = false"),
              sqlite_where=text("delivered_at IS NULL AND failed = 0")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), index=True)
    channel: Mapped[str] = mapped_column(String(8))       # email | sms
    recipient: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)


# --- authentication (issue 5) ------------------------------------------------------------------------

class RefreshToken(Base):
    """A refresh token, stored as its hash; rotated on use (the old one is revoked)."""
    __tablename__ = "refresh_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[datetime] = mapped_column()
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()


class Throttle(Base):
    """Failures (logins) or requests (citizen lookups) per key in a time window, shared by all processes."""
    __tablename__ = "throttle"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
    window_started_at: Mapped[datetime] = mapped_column()
    blocked_until: Mapped[datetime | None] = mapped_column()


class CodeCounter(Base):
    """Serial of dossier codes per agency per day; incremented atomically by an upsert."""
    __tablename__ = "code_counters"
    agency_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


# --- documents (issue 4) ---

DOCUMENT_KINDS = ("component", "result")


class Document(Base):
    """A file in a citizen's data store (Decree 45/2020): a dossier component or an electronic result.
    The bytes are an immutable object in the object store under their sha256, stored once however many
    rows name them; the row says what they are, whose, from which dossier, and until when valid."""
    __tablename__ = "documents"
    __table_args__ = (Index("ix_documents_owner", "owner_id", "kind"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))                   # component | result
    component_code: Mapped[str | None] = mapped_column(String(32))  # the procedure's code of the component
    name: Mapped[str] = mapped_column(String(255))                  # results: `<dossier code>-KQ<n>`
    owner_id: Mapped[str] = mapped_column(String(32))               # citizen ID (số định danh)
    source_dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), index=True)
    digitized: Mapped[bool] = mapped_column(Boolean)                # scanned at the counter, else born electronic
    original_type: Mapped[str] = mapped_column(String(8))           # pdf | jpeg | png (images become PDF)
    signed: Mapped[bool] = mapped_column(Boolean, default=False)
    valid_until: Mapped[date | None] = mapped_column(Date)          # None: no expiry
    created_at: Mapped[datetime] = mapped_column()
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class DossierDocument(Base):
    """A document filed as one component of a dossier: uploaded for it, or reused from the data store
    (`reused`, which the reuse indicator counts)."""
    __tablename__ = "dossier_documents"
    __table_args__ = (UniqueConstraint("dossier_id", "document_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    component_code: Mapped[str] = mapped_column(String(32))
    reused: Mapped[bool] = mapped_column(Boolean)
    attached_at: Mapped[datetime] = mapped_column()
    attached_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    document: Mapped[Document] = relationship(lazy="joined")


# --- indicators (issue 6) ---

# The appointment as moved by supplement pauses only, never by the extension: Decision 766 counts a
# dossier late when it misses its appointment unless the delay is the citizen's (the supplement pause),
# and an extension is the unit's delay. NULL while the dossier has no extension (it equals due_at then);
# kept by engine.dossiers (`extend`, `_resume`). Assigned here, not in the class, so that this issue's
# schema stays in one block.
Dossier.unextended_due_at = mapped_column(UTCDateTime(), nullable=True)
# The on-time and electronic-result indicators select dossiers finished in a period; the indicators read
# the components filed, the results and the online payments of dossiers in id order, from these indexes
# alone (index-only scans, merge-joined to the dossiers).
Index("ix_dossiers_finished_at", Dossier.finished_at)
Index("ix_dossier_documents_kpi", DossierDocument.dossier_id, DossierDocument.component_code, DossierDocument.reused)
Index("ix_documents_kpi", Document.source_dossier_id, Document.kind)

RATINGS = ("satisfied", "normal", "not_satisfied")
RATING_CHANNELS = ("lookup", "counter")
FEEDBACK_STATES = ("received", "handling", "answered", "rejected")


class Payment(Base):
    """A fee (phí, lệ phí) paid for a dossier: how much, when, and whether online. Only the record: a
    payment gateway's confirmation would be recorded through the same function."""
    __tablename__ = "payments"
    __table_args__ = (Index("ix_payments_kpi", "dossier_id", "online", "amount"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"))
    amount: Mapped[int] = mapped_column(Integer)                    # đồng
    online: Mapped[bool] = mapped_column(Boolean)
    paid_at: Mapped[datetime] = mapped_column()
    reference: Mapped[str | None] = mapped_column(String(128))      # receipt or transaction number
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column()


class Rating(Base):
    """The citizen's satisfaction with a returned dossier, once per dossier: through the lookup page or
    at the counter."""
    __tablename__ = "ratings"
    id: Mapped[int] = mapped_column(primary_key=True)
    dossier_id: Mapped[int] = mapped_column(ForeignKey("dossiers.id"), unique=True)
    rating: Mapped[str] = mapped_column(String(16))                 # satisfied | normal | not_satisfied
    comment: Mapped[str | None] = mapped_column(Text)
    via: Mapped[str] = mapped_column(String(8))                     # lookup | counter
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))   # the counter officer, if any
    rated_at: Mapped[datetime] = mapped_column(index=True)


class Feedback(Base):
    """Phản ánh, kiến nghị about a dossier or a unit, with its working-time deadline and a time per state:
    received → handling → answered | rejected."""
    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_unit_due", "unit_id", "due_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    dossier_id: Mapped[int | None] = mapped_column(ForeignKey("dossiers.id"), index=True)
    content: Mapped[str] = mapped_column(Text)
    sender_name: Mapped[str] = mapped_column(String(255))
    sender_contact: Mapped[str | None] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(12))
    received_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    handling_at: Mapped[datetime | None] = mapped_column()
    handled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column()            # answered or rejected
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answer: Mapped[str | None] = mapped_column(Text)                # the answer, or the reason for rejecting


class WorkFile(Base):
    """An internal work file (hồ sơ công việc) of a unit, created electronically or on paper."""
    __tablename__ = "work_files"
    __table_args__ = (Index("ix_work_files_unit_created", "unit_id", "created_at", "electronic"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    title: Mapped[str] = mapped_column(String(500))
    electronic: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column()
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column()
