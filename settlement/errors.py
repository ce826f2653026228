"""What the domain refuses, said the same way everywhere: a code for machines, a message for
people, and the field at fault when one is. No HTTP status: the edge maps codes to its own
answers (api/errors.py), the CLI prints them."""
from __future__ import annotations


class DomainError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(message)
        self.code, self.message, self.field = code, message, field
