"""Use cases of medication supplies: log a supply (its coverage computed in the patient's time
zone), mark a prescription filled or not filled, list them.

The supplies are the one source of truth for the episode's `moud` flag: it is the medication of
the latest supply (`models.latest_supply_of`), set through `cases.derive_flags`. Creates accept
a client id (a retry answers the stored supply). Keyword-only, flush only; audited like
encounters.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import sqlalchemy as sa

from backend.audit import service as audit
from backend.auth.models import User
from backend.cases import activities
from backend.cases import service as cases
from backend.cases.models import Episode
from backend.continuity.models import FillStatus, MedicationSupply, latest_supply_of
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db

_COMPARED = ("medication", "form", "kind", "source", "started_on", "days_supplied")


def _zone(episode: Episode) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(episode.patient.timezone)


def log_supply(*, episode: Episode, fields: dict, actor: User) -> tuple[MedicationSupply, bool]:
    """Log a supply; returns (supply, created). A supply that starts before the episode began
    (the patient's local date of the arrival) belongs to another episode: 422."""
    cases.must_be_open(episode)
    zone = _zone(episode)
    began_on = min(episode.arrived_at, episode.opened_at).astimezone(zone).date()
    if fields["started_on"] < began_on:
        raise Problem(422, f"A supply of this episode starts on or after {began_on.isoformat()}, the day it began "
                           f"({zone.key}).", errors={"started_on": ["Before the episode began."]})
    covered_until = fields["started_on"] + dt.timedelta(days=fields["days_supplied"] - 1)
    supply = MedicationSupply(started_on=fields["started_on"], covered_until=covered_until)
    starts_at, ends_at = supply.covers(zone)
    supply, created = activities.create_once(
        MedicationSupply, fields, _COMPARED, episode_id=episode.id, recorded_by_id=actor.id,
        covered_until=covered_until, timezone=zone.key, starts_at=starts_at, ends_at=ends_at)
    if created:
        latest = db.session.scalars(latest_supply_of(episode.id)).first()
        cases.derive_flags(episode=episode, actor=actor, moud=latest.medication)
    audit.record("medication_supply.create" if created else "medication_supply.read",
                 resource_type="medication_supply", resource_id=supply.id, patient_ids=[episode.patient_id])
    return supply, created


def record_fill(*, supply: MedicationSupply, status: str) -> MedicationSupply:
    """Whether the pharmacy filled the prescription (the episode must be open)."""
    episode = cases.lock_episode(supply.episode_id)
    cases.must_be_open(episode)
    if supply.fill_status != status:
        supply.fill_status, supply.fill_status_at = str(FillStatus(status)), utcnow()
        db.session.flush()
    audit.record("medication_supply.fill", resource_type="medication_supply", resource_id=supply.id,
                 patient_ids=[episode.patient_id], details={"status": status})
    return supply


def list_supplies(*, episode: Episode, cursor: str | None, limit: int):
    """The episode's supplies, the latest start first."""
    stmt = sa.select(MedicationSupply).where(MedicationSupply.episode_id == episode.id)
    return activities.list_page(stmt, episode=episode, cursor=cursor, limit=limit, descending=True,
                                keys=[MedicationSupply.started_on, MedicationSupply.id],
                                action="medication_supply.list")


def of_episode(*, episode_id) -> list[MedicationSupply]:
    """Every supply of an episode (the timeline's read; it audits the timeline itself)."""
    return list(db.session.scalars(sa.select(MedicationSupply).where(MedicationSupply.episode_id == episode_id)))
