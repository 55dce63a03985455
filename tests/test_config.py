"""Settings refuse what would weaken the system before it starts."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from engine.config import Settings


def test_a_short_token_signing_key_is_refused_with_what_to_do():
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings(secret_key="bench-only-secret-key")
    assert Settings(secret_key="x" * 32).secret_key == "x" * 32
    assert Settings(secret_key=None).secret_key is None           # the generated key of the embedded default
