"""Whose caseload a user may read (privacy.md "minimum necessary"): a coach their own; clinic
staff any coach's, which they must name. The episodes in a caseload are the coach's, so no
record-level scope applies beyond this."""

from __future__ import annotations

import uuid

from backend.auth.models import Role, User
from backend.errors import Problem


def caseload_owner(user: User, asked: uuid.UUID | None) -> uuid.UUID:
    """The coach whose caseload `user` reads when asking for `asked` (None: their own)."""
    if user.role == Role.COACH:
        if asked not in (None, user.id):
            raise Problem(403, "Coaches see their own caseload.")
        return user.id
    if asked is None:
        raise Problem(422, "Name the coach whose caseload you want.", errors={"coach_id": ["Required."]})
    return asked
