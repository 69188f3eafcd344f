"""Use cases of the programs directory: keeping it (admins) and naming a program from another
record (a handoff, a consent, an appointment), which must be one the directory has.

Keyword-only functions that flush and never commit.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from backend.audit import service as audit
from backend.errors import Problem
from backend.extensions import db
from backend.pagination import keyset_page
from backend.programs.models import Program


def create_program(*, fields: dict) -> Program:
    program = Program(**fields)
    db.session.add(program)
    db.session.flush()
    audit.record("program.create", resource_type="program", resource_id=program.id)
    return program


def update_program(*, program: Program, changes: dict) -> Program:
    for name, value in changes.items():
        setattr(program, name, value)
    audit.record("program.update", resource_type="program", resource_id=program.id,
                 details={"fields": sorted(changes)})
    return program


def list_programs(*, service: str | None, accepting: bool | None, cursor: str | None, limit: int):
    stmt = sa.select(Program)
    if service is not None:
        stmt = stmt.where(Program.service == service)
    if accepting is not None:
        stmt = stmt.where(Program.accepting_patients.is_(accepting))
    return keyset_page(stmt, keys=[Program.name, Program.id], cursor=cursor, limit=limit, session=db.session)


def named_program(program_id: uuid.UUID, *, field: str) -> Program:
    """The program a client named in `field`, or 422: a record never points at a program the
    directory does not have."""
    program = db.session.get(Program, program_id)
    if program is None:
        raise Problem(422, "No such program.", errors={field: ["No such program."]})
    return program
