"""The directory of community programs, as other records name it."""

from __future__ import annotations

import uuid

from backend.errors import Problem
from backend.extensions import db
from backend.handoffs.models import Program


def named_program(program_id: uuid.UUID, *, field: str) -> Program:
    """The program a client named in `field`, or 422: a record never points at a program the
    directory does not have."""
    program = db.session.get(Program, program_id)
    if program is None:
        raise Problem(422, "No such program.", errors={field: ["No such program."]})
    return program
