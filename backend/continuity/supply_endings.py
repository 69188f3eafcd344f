"""Medication about to run out: escalated exactly once, 24 h before the supply ends.

The job finds open episodes whose latest supply ends within ESCALATE_BEFORE_END with no visit
booked to continue it (`rules.ending`), and for each claims the supply with INSERT … ON
CONFLICT DO NOTHING on `supply_escalations`: only the claimer creates the follow-up task (for
the coach, or clinic staff as a whole when the episode has none), as the handoff deadlines do.
Running it twice, or in two clock processes at once, escalates nothing twice. A supply that
ended more than FORGET_AFTER_END ago is not escalated any more (a supply logged late, or a
database restored from before the job ran, should not wake old episodes); the caseload still
shows it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from backend.cases import activities
from backend.cases import service as cases
from backend.cases.models import Episode
from backend.continuity.models import MedicationSupply, SupplyEscalation
from backend.continuity.rules import ESCALATE_BEFORE_END, ending, latest_supply_id
from backend.database import upsert, utcnow
from backend.extensions import db

FORGET_AFTER_END = dt.timedelta(days=7)
TITLE = "Medication supply ends within 24 h and no prescriber visit is booked: arrange one"


def _due(now: dt.datetime) -> sa.Select:
    return (sa.select(MedicationSupply.id, MedicationSupply.episode_id)
            .join(Episode, Episode.id == MedicationSupply.episode_id)
            .where(Episode.is_open, MedicationSupply.id == latest_supply_id(Episode.id),
                   MedicationSupply.ends_at > now - FORGET_AFTER_END,
                   ending(Episode.id, now, ESCALATE_BEFORE_END),
                   ~sa.exists().where(SupplyEscalation.supply_id == MedicationSupply.id)))


def check_supply_endings(*, now: dt.datetime | None = None) -> int:
    """Escalate every supply ending within 24 h with nothing booked; return how many this run did."""
    now = now or utcnow()
    escalated = 0
    for supply_id, episode_id in db.session.execute(_due(now)).all():
        claimed = db.session.execute(upsert(
            SupplyEscalation, {"supply_id": supply_id, "escalated_at": now}, index_elements=["supply_id"],
            update=None, dialect=db.engine.dialect.name).returning(SupplyEscalation.supply_id)).first()
        if claimed is None:  # another run got there first
            continue
        episode = cases.lock_episode(episode_id)
        # A visit booked, a new supply or the closing of the episode may have won the race since.
        if not db.session.scalar(sa.select(sa.exists().where(Episode.id == episode_id, Episode.is_open,
                                                             ending(Episode.id, now, ESCALATE_BEFORE_END),
                                                             latest_supply_id(Episode.id) == supply_id))):
            continue
        task = activities.create_system_task(episode=episode, title=TITLE, due_at=now)
        db.session.execute(sa.update(SupplyEscalation).where(SupplyEscalation.supply_id == supply_id)
                           .values(task_id=task.id))
        escalated += 1
    return escalated
