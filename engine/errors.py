"""Domain errors. Each carries a stable English code, a Vietnamese message a counter officer can act
on, the HTTP status the API maps it to, and optional structured data (e.g. form 02 / form 03 content)."""
from __future__ import annotations

from typing import Any


class MotcuaError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, data: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.data = data or {}

    def problem(self) -> dict[str, Any]:
        """RFC 9457 problem details."""
        body = {"type": f"urn:motcua:error:{self.code}", "title": self.message,
                "status": self.status, "detail": self.code}
        if self.data:
            body["data"] = self.data
        return body


class NotFound(MotcuaError):
    status = 404
    code = "not_found"


class InvalidInput(MotcuaError):
    status = 422
    code = "invalid_input"


class Forbidden(MotcuaError):
    status = 403
    code = "forbidden"


class Conflict(MotcuaError):
    """A concurrent change won, or the dossier is not in a state that allows the command."""
    status = 409
    code = "conflict"


class IncompleteDossier(InvalidInput):
    """Required components are missing: the dossier is not accepted; data holds form 02 content."""
    code = "dossier_incomplete"


class Inadmissible(InvalidInput):
    """The dossier cannot be received here (outside competence, procedure not in force); data holds form 03."""
    code = "dossier_inadmissible"


class InvalidDiagram(InvalidInput):
    code = "invalid_diagram"

    def __init__(self, message: str, *, problems: list | None = None):
        super().__init__(message, data={"problems": [str(p) for p in (problems or [])]})
        self.problems = problems or []
