"""Path ids are the tenant's own numbers (settlement/numbering.py): each route turns the
number into the internal id within the caller's tenant first, and answers 404 for a number
the tenant does not have (another tenant's object of that number is never looked at)."""
from __future__ import annotations

from api.auth import current
from api.database import db
from api.errors import Problem
from settlement.numbering import internal_id


def resolve(model, number: int, noun: str) -> int:
    """The internal id of the caller's `model` numbered `number`, or a 404 naming it."""
    found = internal_id(db(), model, current().tenant_id, number)
    if found is None:
        raise Problem(404, "Not Found", f"no {noun} {number}")
    return found
