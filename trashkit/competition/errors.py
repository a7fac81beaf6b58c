"""The one error a student sees: a refusal that says why and what to do instead."""

from __future__ import annotations


class Refused(ValueError):
    """A submission or request the server will not take; the message says why.

    ``status`` is the HTTP status the server answers with (400 unless said otherwise)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
