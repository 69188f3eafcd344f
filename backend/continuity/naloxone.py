"""Use cases of the naloxone log: a kit given, a use reported (which asks for a replacement).

The log is the one source of truth for the episode's `naloxone_given` flag: a kit given to the
patient sets it (`cases.derive_flags`); a kit given to a support person does not, since the
flag, like ACEP's measure, is about the patient having naloxone. Creates accept a client id
(a retry answers the stored entry). Keyword-only, flush only; audited like encounters.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from backend.audit import service as audit
from backend.auth.models import User
from backend.cases import activities
from backend.cases import service as cases
from backend.cases.models import Episode
from backend.continuity.models import NaloxoneEvent, NaloxoneKind
from backend.database import utcnow
from backend.extensions import db

#: When the replacement of a used kit is due, from the report of the use.
REPLACE_KIT_WITHIN = dt.timedelta(hours=24)
REPLACE_KIT_TITLE = "Naloxone kit used: give a replacement kit"
_COMPARED = ("kind", "occurred_at", "recipient", "product", "doses", "training_given", "setting", "reported_by",
             "note")


def log(*, episode: Episode, fields: dict, actor: User) -> tuple[NaloxoneEvent, bool]:
    """Log a kit given or a use reported; returns (entry, created)."""
    cases.must_be_open(episode)
    fields = dict(fields)
    kind = fields["kind"]
    fields["occurred_at"] = fields.pop("distributed_at" if kind == NaloxoneKind.GIVEN else "used_at")
    entry, created = activities.create_once(NaloxoneEvent, fields, _COMPARED, episode_id=episode.id,
                                            recorded_by_id=actor.id)
    if created and kind == NaloxoneKind.USED:
        task = activities.create_system_task(episode=episode, title=REPLACE_KIT_TITLE,
                                             due_at=utcnow() + REPLACE_KIT_WITHIN)
        entry.task_id = task.id
        db.session.flush()
    if created and kind == NaloxoneKind.GIVEN and entry.recipient == "patient":
        cases.derive_flags(episode=episode, actor=actor, naloxone_given=True)
    audit.record("naloxone.create" if created else "naloxone.read", resource_type="naloxone_event",
                 resource_id=entry.id, patient_ids=[episode.patient_id], details={"kind": kind})
    return entry, created


def list_log(*, episode: Episode, cursor: str | None, limit: int):
    """The episode's naloxone log, newest first."""
    stmt = sa.select(NaloxoneEvent).where(NaloxoneEvent.episode_id == episode.id)
    return activities.list_page(stmt, episode=episode, cursor=cursor, limit=limit, descending=True,
                                keys=[NaloxoneEvent.occurred_at, NaloxoneEvent.id], action="naloxone.list")


def of_episode(*, episode_id) -> list[NaloxoneEvent]:
    """Every entry of an episode's log (the timeline's read; it audits the timeline itself)."""
    return list(db.session.scalars(sa.select(NaloxoneEvent).where(NaloxoneEvent.episode_id == episode_id)))
