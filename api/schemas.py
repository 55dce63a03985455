"""Request bodies. Responses are the engine's plain data (dates as ISO 8601)."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Versioned(Strict):
    expected_version: int | None = Field(None, ge=1, description="the dossier version the client saw (409 if stale)")


class Applicant(Strict):
    full_name: str = Field(..., min_length=1, max_length=255)
    citizen_id: str = Field(..., description="CCCD / số định danh cá nhân: 12 chữ số")
    phone: str | None = Field(None, max_length=20)
    email: str | None = Field(None, max_length=255)
    address: str | None = Field(None, max_length=500)


class ReceiveIn(Strict):
    procedure_code: str = Field(..., max_length=32)
    applicant: Applicant
    components: list[str] = Field(default_factory=list, max_length=100)
    channel: str = Field("counter", pattern="^(counter|post|online)$")
    handling_unit: str | None = Field(None, max_length=64)


class CompleteIn(Versioned):
    decision: str | None = Field(None, max_length=32)
    note: str | None = Field(None, max_length=2000)


class AssignIn(Versioned):
    username: str = Field(..., max_length=64)


class SupplementRequestIn(Versioned):
    missing: list[str] = Field(..., min_length=1, max_length=50)
    note: str = Field(..., min_length=1, max_length=2000)


class SupplementIn(Versioned):
    components: list[str] = Field(default_factory=list, max_length=100)
    note: str | None = Field(None, max_length=2000)


class ReasonIn(Versioned):
    reason: str = Field(..., min_length=1, max_length=2000)


class ExtendIn(ReasonIn):
    new_due: datetime | None = None
    extra_working_days: int | None = Field(None, ge=1, le=30)


class TransferIn(Versioned):
    to_unit: str = Field(..., max_length=64)
    note: str | None = Field(None, max_length=2000)


class NoteIn(Versioned):
    note: str | None = Field(None, max_length=2000)


class RefreshIn(Strict):
    refresh_token: str = Field(..., max_length=200)
