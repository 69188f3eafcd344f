"""Handoff deadlines: a missed accept-by or arrive-by is escalated exactly once.

The job finds open handoffs past a deadline, and for each claims the (handoff, deadline) key
with INSERT … ON CONFLICT DO NOTHING: only the claimer creates the follow-up task and the
`overdue` event. Running it twice, or in two clock processes at once, escalates nothing twice.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from backend.cases import activities
from backend.database import upsert, utcnow
from backend.extensions import db
from backend.handoffs.models import (
    DEADLINE_PENDING_IN,
    DeadlineEscalation,
    Handoff,
    HandoffEventKind,
)
from backend.handoffs.service import add_event, lock_episode_then_handoff

_WHAT = {"accept_by": (HandoffEventKind.OVERDUE_ACCEPT, "not accepted in time"),
         "arrive_by": (HandoffEventKind.OVERDUE_ARRIVAL, "arrival not confirmed in time")}


def check_deadlines(*, now: dt.datetime | None = None) -> int:
    """Escalate every deadline missed so far; return how many this run escalated."""
    now = now or utcnow()
    due = [(deadline, handoff) for deadline in DEADLINE_PENDING_IN for handoff in db.session.scalars(
        sa.select(Handoff).where(Handoff.missed(deadline, now), ~sa.exists().where(
            DeadlineEscalation.handoff_id == Handoff.id, DeadlineEscalation.deadline == deadline)))]
    escalated = 0
    for deadline, handoff in due:
        claimed = db.session.execute(upsert(
            DeadlineEscalation, {"handoff_id": handoff.id, "deadline": deadline, "escalated_at": now},
            index_elements=["handoff_id", "deadline"], update=None, dialect=db.engine.dialect.name,
        ).returning(DeadlineEscalation.handoff_id)).first()
        if claimed is None:  # another run got there first
            continue
        episode, handoff = lock_episode_then_handoff(handoff)
        if not handoff.missed(deadline, now):  # a step won the race since the SELECT
            continue
        kind, why = _WHAT[deadline]
        task = activities.create_system_task(
            episode=episode, title=f"Handoff to the {handoff.to_level.replace('_', ' ')} {why}: follow up",
            due_at=now)
        db.session.execute(sa.update(DeadlineEscalation).where(
            DeadlineEscalation.handoff_id == handoff.id, DeadlineEscalation.deadline == deadline
        ).values(task_id=task.id))
        add_event(handoff, handoff.status, None, f"Escalated: {why}.", kind=kind)
        escalated += 1
    return escalated
