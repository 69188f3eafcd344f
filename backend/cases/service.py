"""Use cases of patients and episodes: registration, lookup, the episode's lifecycle.

Keyword-only functions that flush and never commit. Each read or write of patient data is
recorded in the audit trail here; lifecycle changes other domains react to are announced
through `backend.signals`.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from flask import current_app

from backend import signals
from backend.audit import service as audit
from backend.auth.models import Role, User
from backend.cases.models import (
    Disposition,
    Episode,
    EpisodeEvent,
    EpisodeStatus,
    Level,
    LevelPeriod,
    Patient,
    SmsStatus,
    Task,
    TaskStatus,
)
from backend.cases.scopes import EPISODES, PATIENTS
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.pagination import keyset_page

# --- patients ------------------------------------------------------------------------------

def register_patient(*, fields: dict, actor: User) -> Patient:
    """Register a patient; an MRN already on file answers 409 with the existing id."""
    if fields.get("mrn"):
        existing = db.session.scalar(sa.select(Patient.id).where(Patient.mrn == fields["mrn"]))
        if existing is not None:
            _duplicate_mrn(existing)
    patient = Patient(**{k: v for k, v in fields.items() if k != "timezone"},
                      timezone=fields.get("timezone") or current_app.config["DEFAULT_TIMEZONE"],
                      registered_by_id=actor.id)
    try:
        with db.session.begin_nested():  # a concurrent registration of the same MRN loses here
            db.session.add(patient)
    except sa.exc.IntegrityError:
        _duplicate_mrn(db.session.scalar(sa.select(Patient.id).where(Patient.mrn == fields["mrn"])))
    audit.record("patient.create", resource_type="patient", resource_id=patient.id, patient_ids=[patient.id])
    return patient


def _duplicate_mrn(existing_id: uuid.UUID):
    audit.record("patient.duplicate_mrn", resource_type="patient", resource_id=existing_id,
                 patient_ids=[existing_id])
    raise Problem(409, "A patient with this MRN is already registered; use that record.",
                  existing_id=str(existing_id), errors={"mrn": ["Already registered."]})


def patient_for_new_episode(*, patient_id: uuid.UUID) -> Patient:
    """The patient an ED nurse or clinic staff opens an episode for, in their scope or not:
    a returning patient found by exact MRN gets a new episode, never a duplicate record."""
    patient = db.session.get(Patient, patient_id)
    if patient is None:
        raise Problem(404, f"No patient {patient_id}.", errors={"patient_id": ["No such patient."]})
    return patient


def read_patient(*, patient: Patient) -> Patient:
    audit.record("patient.read", resource_type="patient", resource_id=patient.id, patient_ids=[patient.id])
    return patient


def list_patients(*, user: User, mrn: str | None, q: str | None, cursor: str | None, limit: int):
    """Exact-MRN lookup (any clinical role: it prevents duplicates), name search (clinic
    staff), or the patients in the caller's scope."""
    stmt = sa.select(Patient)
    if mrn is not None:
        stmt = stmt.where(Patient.mrn == mrn.strip())
    if mrn is None or user.role == Role.COACH:  # coaches look up MRNs among their own patients only
        stmt = PATIENTS.where(stmt, user)
    if q is not None:
        if user.role != Role.CLINIC_STAFF:
            raise Problem(403, "Only clinic staff search patients by name; look up an exact MRN instead.")
        needle = q.strip().lower()
        stmt = stmt.where(sa.or_(*(sa.func.lower(column).contains(needle, autoescape=True) for column in
                                   (Patient.family_name, Patient.given_name, Patient.preferred_name))))
    patients, next_cursor = keyset_page(stmt, keys=[Patient.family_name, Patient.given_name, Patient.id],
                                        cursor=cursor, limit=limit, session=db.session)
    audit.record("patient.list", patient_ids=[p.id for p in patients],
                 details={"by": "mrn" if mrn else "name" if q else "scope", "count": len(patients)})
    return patients, next_cursor


def update_patient(*, patient: Patient, changes: dict) -> Patient:
    if changes.get("mrn") and changes["mrn"] != patient.mrn:
        existing = db.session.scalar(sa.select(Patient.id).where(Patient.mrn == changes["mrn"]))
        if existing is not None:
            _duplicate_mrn(existing)
    for name, value in changes.items():
        if name == "timezone" and value is None:
            value = current_app.config["DEFAULT_TIMEZONE"]
        setattr(patient, name, value)
    if "phone" in changes:
        patient.phone_invalid_at = patient.phone_invalid_code = None  # a new number gets a new chance
    if changes.get("mrn"):
        try:
            with db.session.begin_nested():  # a concurrent registration of the same MRN loses here
                db.session.flush()
        except sa.exc.IntegrityError:
            _duplicate_mrn(db.session.scalar(sa.select(Patient.id).where(Patient.mrn == changes["mrn"])))
    audit.record("patient.update", resource_type="patient", resource_id=patient.id, patient_ids=[patient.id],
                 details={"fields": sorted(changes)})
    return patient


def set_sms_consent(*, patient: Patient, status: str, method: str) -> Patient:
    """Record the patient's SMS consent (separate from 42 CFR Part 2 consent), how and when."""
    patient.sms_status = SmsStatus(status)
    patient.sms_status_method = method
    patient.sms_status_at = utcnow()
    db.session.flush()
    audit.record("patient.sms_consent", resource_type="patient", resource_id=patient.id,
                 patient_ids=[patient.id], details={"status": status, "method": method})
    signals.sms_consent_changed.send(patient)
    return patient


# --- episodes ------------------------------------------------------------------------------

def open_episode(*, patient: Patient, level: str, presenting_reason: str, arrived_at: dt.datetime,
                 coach_id: uuid.UUID | None, flags: dict, actor: User) -> Episode:
    """Open the patient's episode at the ED or inpatient level (one open episode at a time)."""
    existing = open_episode_id(patient.id)
    if existing is not None:
        _already_open(existing)
    coach = _active_coach(coach_id) if coach_id else None
    flags = _derived_flags_agree(None, flags)
    episode = Episode(patient=patient, level=Level(level), presenting_reason=presenting_reason,
                      arrived_at=arrived_at, opened_by_id=actor.id, coach_id=coach.id if coach else None,
                      level_periods=[LevelPeriod(level=Level(level), started_at=arrived_at)], **flags)
    try:
        with db.session.begin_nested():  # the partial unique index decides between two at once
            db.session.add(episode)
    except sa.exc.IntegrityError:
        _already_open(open_episode_id(patient.id))
    _event(episode, "opened", actor, level=level)
    if coach is not None:
        _event(episode, "coach_assigned", actor, coach_id=str(coach.id))
    audit.record("episode.create", resource_type="episode", resource_id=episode.id, patient_ids=[patient.id])
    return episode


def open_episode_id(patient_id: uuid.UUID) -> uuid.UUID | None:
    """The patient's open episode, if any."""
    return db.session.scalar(sa.select(Episode.id).where(Episode.patient_id == patient_id,
                                                         Episode.is_open))


def lock_episode(episode_id: uuid.UUID) -> Episode:
    """The episode, reloaded with its row locked until commit (other domains lock it first,
    before their own rows: one lock order for every writer)."""
    return db.session.scalar(sa.select(Episode).where(Episode.id == episode_id).with_for_update()
                             .execution_options(populate_existing=True))


def is_open(episode_id: uuid.UUID) -> bool:
    return bool(db.session.scalar(sa.select(Episode.is_open).where(Episode.id == episode_id)))


def patient_ids_of(episode_ids) -> list[uuid.UUID]:
    """The patients of these episodes (for the audit trail of other domains' lists)."""
    episode_ids = list(episode_ids)
    if not episode_ids:
        return []
    return list(db.session.scalars(sa.select(Episode.patient_id).where(Episode.id.in_(episode_ids))).all())


def _already_open(existing_id: uuid.UUID | None):
    raise Problem(409, "This patient already has an open episode; close it before opening another.",
                  existing_id=str(existing_id) if existing_id else None)


def _active_coach(coach_id: uuid.UUID) -> User:
    coach = db.session.get(User, coach_id)
    if coach is None or coach.role != Role.COACH or not coach.active:
        raise Problem(422, "The coach must be an active user with the coach role.",
                      errors={"coach_id": ["Not an active coach."]})
    return coach


def read_episode(*, episode: Episode) -> Episode:
    audit.record("episode.read", resource_type="episode", resource_id=episode.id, patient_ids=[episode.patient_id])
    return episode


def list_episodes(*, user: User, filters: dict, cursor: str | None, limit: int):
    stmt = EPISODES.where(sa.select(Episode), user)
    if "status" in filters:
        stmt = stmt.where(Episode.status == EpisodeStatus(filters["status"]))
    if "level" in filters:
        stmt = stmt.where(Episode.level == Level(filters["level"]))
    if "coach_id" in filters:
        stmt = stmt.where(Episode.coach_id == filters["coach_id"])
    if filters.get("unassigned") is True:
        stmt = stmt.where(Episode.coach_id.is_(None))
    elif filters.get("unassigned") is False:
        stmt = stmt.where(Episode.coach_id.is_not(None))
    episodes, next_cursor = keyset_page(stmt, keys=[Episode.opened_at, Episode.id], cursor=cursor,
                                        limit=limit, descending=True, session=db.session)
    audit.record("episode.list", patient_ids=[e.patient_id for e in episodes], details={"count": len(episodes)})
    return episodes, next_cursor


def update_episode(*, episode: Episode, changes: dict, actor: User) -> Episode:
    must_be_open(episode)
    flags = _derived_flags_agree(episode, changes.pop("flags", {}))
    arrived_at = changes.get("arrived_at")
    if arrived_at is not None:
        if episode.discharged_at is not None and arrived_at > episode.discharged_at:
            raise Problem(422, "Arrival cannot come after discharge.",
                          errors={"arrived_at": ["After the episode's discharged_at."]})
        episode.level_periods[0].started_at = arrived_at  # the first level began on arrival
    for name, value in {**changes, **flags}.items():
        setattr(episode, name, value)
    if flags:
        _event(episode, "flags_changed", actor, **{k: v for k, v in flags.items()})
    audit.record("episode.update", resource_type="episode", resource_id=episode.id,
                 patient_ids=[episode.patient_id], details={"fields": sorted([*changes, *flags])})
    return episode


#: The flags whose source of truth is a log of the continuity domain (`backend.continuity`), and
#: where a client records what sets them. A write of one that agrees with its log changes
#: nothing; one that disagrees is refused (API 1.12 changelog).
DERIVED_FLAGS = {"naloxone_given": "POST /api/v1/episodes/{id}/naloxone",
                 "moud": "POST /api/v1/episodes/{id}/medications"}


def _derived_flags_agree(episode: Episode | None, flags: dict) -> dict:
    """`flags` without the derived ones, once each agrees with the episode's (a new episode's
    defaults when `episode` is None); 422 for one that disagrees."""
    current = {"naloxone_given": False, "moud": "none"} if episode is None else \
        {"naloxone_given": episode.naloxone_given, "moud": episode.moud}
    wrong = {name: [f"Derived from the log: record it with {where}; it is {json_value(current[name])} now."]
             for name, where in DERIVED_FLAGS.items() if name in flags and flags[name] != current[name]}
    if wrong:
        raise Problem(422, "naloxone_given and moud follow the naloxone log and the medication supplies: "
                           "record a kit or a supply instead of setting the flag.",
                      errors={f"flags.{name}": messages for name, messages in wrong.items()})
    return {name: value for name, value in flags.items() if name not in DERIVED_FLAGS}


def json_value(value) -> str:
    return {True: "true", False: "false"}.get(value, str(value))


def derive_flags(*, episode: Episode, actor: User | None, **flags) -> None:
    """Set flags derived from a continuity log (only `backend.continuity` calls this); a change
    is an event on the timeline."""
    changed = {name: value for name, value in flags.items() if getattr(episode, name) != value}
    for name, value in changed.items():
        setattr(episode, name, value)
    if changed:
        _event(episode, "flags_changed", actor, **changed)
        db.session.flush()


def discharge(*, episode: Episode, discharged_at: dt.datetime, actor: User,
              disposition: str = Disposition.UNKNOWN) -> Episode:
    """Record the discharge and where the patient went (`unknown` when the client did not say);
    outreach starts its post-discharge check-ins on the signal."""
    must_be_open(episode)
    if episode.discharged_at is not None:
        raise Problem(409, "This episode's patient was already discharged.")
    if discharged_at < episode.arrived_at:
        raise Problem(422, "Discharge cannot come before arrival.",
                      errors={"discharged_at": ["Before the episode's arrived_at."]})
    episode.discharged_at, episode.disposition = discharged_at, str(disposition)
    _event(episode, "discharged", actor, at=discharged_at, disposition=str(disposition))
    db.session.flush()
    audit.record("episode.discharge", resource_type="episode", resource_id=episode.id,
                 patient_ids=[episode.patient_id], details={"disposition": str(disposition)})
    signals.episode_discharged.send(episode)
    return episode


def assign_coach(*, episode: Episode, coach_id: uuid.UUID, actor: User) -> Episode:
    """Make `coach_id` the primary coach; the previous coach's open tasks on it move along."""
    must_be_open(episode)
    coach = _active_coach(coach_id)
    previous = episode.coach_id
    if previous == coach.id:
        read_episode(episode=episode)
        return episode
    episode.coach_id = coach.id
    db.session.execute(sa.update(Task).where(
        Task.episode_id == episode.id, Task.status == TaskStatus.OPEN,
        sa.or_(Task.assignee_id == previous, Task.assignee_id.is_(None))).values(
        assignee_id=coach.id, version=Task.version + 1, updated_at=utcnow()))
    _event(episode, "coach_assigned", actor, coach_id=str(coach.id),
           previous_coach_id=str(previous) if previous else None)
    db.session.flush()
    audit.record("episode.assign_coach", resource_type="episode", resource_id=episode.id,
                 patient_ids=[episode.patient_id], details={"coach_id": str(coach.id)})
    signals.episode_coach_changed.send(episode, previous_coach_id=previous)
    return episode


def close_episode(*, episode: Episode, reason: str, note: str | None, actor: User) -> Episode:
    """Close with a reason: open tasks are cancelled; handoffs and outreach react to the signal."""
    must_be_open(episode)
    now = utcnow()
    episode.status = EpisodeStatus.CLOSED
    episode.closed_at, episode.close_reason, episode.close_note = now, reason, note
    for period in episode.level_periods:
        if period.ended_at is None:
            period.ended_at = now
    db.session.execute(sa.update(Task).where(Task.episode_id == episode.id, Task.status == TaskStatus.OPEN)
                       .values(status=TaskStatus.CANCELLED, version=Task.version + 1, updated_at=now))
    _event(episode, "closed", actor, reason=reason)
    db.session.flush()
    audit.record("episode.close", resource_type="episode", resource_id=episode.id,
                 patient_ids=[episode.patient_id], details={"reason": reason})
    signals.episode_closed.send(episode)
    return episode


def move_level(*, episode: Episode, level: str, at: dt.datetime) -> Episode:
    """The episode moves to another level of care (only a completed handoff does this): the
    current level's period ends and the new one begins at `at`."""
    for period in episode.level_periods:
        if period.ended_at is None:
            period.ended_at = at
    episode.level_periods.append(LevelPeriod(level=Level(level), started_at=at))
    episode.level = Level(level)  # the timeline shows the periods: no event of its own
    db.session.flush()
    audit.record("episode.level_change", resource_type="episode", resource_id=episode.id,
                 patient_ids=[episode.patient_id], details={"level": level})
    return episode


def must_be_open(episode: Episode) -> None:
    """Work is recorded only on an open episode: a closed one answers 409."""
    if not episode.is_open:
        raise Problem(409, "This episode is closed.")


def _event(episode: Episode, kind: str, actor: User | None, at: dt.datetime | None = None, **data) -> None:
    db.session.add(EpisodeEvent(episode_id=episode.id, kind=kind, at=at or utcnow(),
                                actor_id=actor.id if actor else None, data=data))
