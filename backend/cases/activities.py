"""Use cases of the work done on an episode: encounters, tasks and appointments.

Creates accept a client-generated id, so a phone's retry is a no-op that answers the record
already stored (a different record under the same id is a 409). Keyword-only, flush only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping

import sqlalchemy as sa

from backend import signals
from backend.audit import service as audit
from backend.auth.models import CASE_WORKERS, User
from backend.cases import service as cases
from backend.cases.models import (
    Appointment,
    AppointmentStatus,
    Encounter,
    Episode,
    Task,
    TaskStatus,
)
from backend.cases.scopes import TASKS
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.pagination import keyset_page
from backend.programs import service as programs


def _create_once(model, fields: Mapping, compare: tuple[str, ...], **attributes):
    """Insert `model(**fields, **attributes)`, or return the record a retry already created.

    Returns (record, created)."""
    record_id = fields.get("id")
    if record_id is not None:
        existing = db.session.get(model, record_id)
        if existing is not None:
            same = existing.episode_id == attributes["episode_id"] and all(
                getattr(existing, name) == fields.get(name, getattr(existing, name)) for name in compare)
            if not same:
                raise Problem(409, f"The id {record_id} is already used by a different record.",
                              errors={"id": ["Already used by a different record."]})
            return existing, False
    record = model(**fields, **attributes)
    try:
        with db.session.begin_nested():  # the same retry, running at the same moment, loses here
            db.session.add(record)
    except sa.exc.IntegrityError:
        if record_id is None:
            raise
        return _create_once(model, fields, compare, **attributes)
    return record, True


#: For the domains built on cases whose records a phone also creates offline (the naloxone log,
#: medication supplies): the same client-id rule.
create_once = _create_once


def _audit(action: str, record, episode: Episode) -> None:
    audit.record(action, resource_type=record.__tablename__[:-1], resource_id=record.id,
                 patient_ids=[episode.patient_id])


def _list(stmt, *, episode: Episode | None, cursor, limit, keys, descending=False, action: str):
    rows, next_cursor = keyset_page(stmt, keys=keys, cursor=cursor, limit=limit, descending=descending,
                                    session=db.session)
    patient_ids = [episode.patient_id] if episode is not None else cases.patient_ids_of({r.episode_id for r in rows})
    audit.record(action, patient_ids=patient_ids, details={"count": len(rows)})
    return rows, next_cursor


#: A page of an episode's records of another domain, audited as a list like these.
list_page = _list


# --- encounters ----------------------------------------------------------------------------

def log_encounter(*, episode: Episode, fields: dict, actor: User):
    cases.must_be_open(episode)
    fields = {**fields, "outcome": fields.get("outcome") or Encounter.REACHED}
    encounter, created = _create_once(
        Encounter, fields, ("kind", "outcome", "occurred_at", "duration_minutes", "location", "note"),
        episode_id=episode.id, author_id=actor.id)
    _audit("encounter.create" if created else "encounter.read", encounter, episode)
    return encounter, created


def list_encounters(*, episode: Episode, cursor: str | None, limit: int):
    stmt = sa.select(Encounter).where(Encounter.episode_id == episode.id)
    return _list(stmt, episode=episode, cursor=cursor, limit=limit, descending=True,
                 keys=[Encounter.occurred_at, Encounter.id], action="encounter.list")


# --- tasks ---------------------------------------------------------------------------------

def create_task(*, episode: Episode, fields: dict, actor: User):
    cases.must_be_open(episode)
    _check_window(fields.get("window_start"), fields["due_at"])
    assignee_id = fields.get("assignee_id") or episode.coach_id or actor.id
    _assignable(assignee_id)
    task, created = _create_once(Task, {**fields, "assignee_id": assignee_id},
                                 ("title", "due_at", "window_start", "assignee_id"),
                                 episode_id=episode.id, created_by_id=actor.id)
    _audit("task.create" if created else "task.read", task, episode)
    return task, created


def _check_window(window_start, due_at) -> None:
    if window_start is not None and window_start > due_at:
        raise Problem(422, "A task's window starts before it is due.",
                      errors={"window_start": ["After due_at."]})


def _assignable(user_id: uuid.UUID) -> None:
    user = db.session.get(User, user_id)
    if user is None or not user.active or user.role not in CASE_WORKERS:
        raise Problem(422, "Tasks go to an active coach or clinic staff member.",
                      errors={"assignee_id": ["Not an active coach or clinic staff member."]})


def create_system_task(*, episode: Episode, title: str, due_at, for_clinic_staff: bool = False) -> Task:
    """A follow-up the system raises (a missed handoff deadline): for the episode's coach, or
    for clinic staff as a whole (no assignee) while the episode has no coach, or when
    `for_clinic_staff` (a record to check, not the coach's work)."""
    task = Task(episode_id=episode.id, title=title, due_at=due_at,
                assignee_id=None if for_clinic_staff else episode.coach_id)
    db.session.add(task)
    db.session.flush()
    audit.record("task.create", resource_type="task", resource_id=task.id, patient_ids=[episode.patient_id],
                 details={"by": "system"})
    return task


def list_episode_tasks(*, episode: Episode, cursor: str | None, limit: int):
    stmt = sa.select(Task).where(Task.episode_id == episode.id)
    return _list(stmt, episode=episode, cursor=cursor, limit=limit, keys=[Task.due_at, Task.id],
                 action="task.list")


def list_tasks(*, user: User, assignee: str | None, status: str | None, cursor: str | None, limit: int):
    """Tasks across the caller's episodes (`assignee=me` for their own), soonest due first."""
    stmt = TASKS.where(sa.select(Task), user)
    if assignee is not None:
        try:
            assignee_id = user.id if assignee == "me" else uuid.UUID(assignee)
        except ValueError:
            raise Problem(422, "assignee is `me` or a user id.", errors={"assignee": ["Not `me` or a UUID."]}) \
                from None
        stmt = stmt.where(Task.assignee_id == assignee_id)
    if status is not None:
        stmt = stmt.where(Task.status == TaskStatus(status))
    return _list(stmt, episode=None, cursor=cursor, limit=limit, keys=[Task.due_at, Task.id],
                 action="task.list")


def read(record, *, action: str):
    episode = db.session.get(Episode, record.episode_id)
    _audit(action, record, episode)
    return record


def _open_episode_of(record) -> Episode:
    """The record's episode, locked, refusing changes once it is closed."""
    episode = cases.lock_episode(record.episode_id)
    cases.must_be_open(episode)
    return episode


def update_task(*, task: Task, changes: dict) -> Task:
    episode = _open_episode_of(task)
    if "assignee_id" in changes and changes["assignee_id"] is not None:
        _assignable(changes["assignee_id"])
    _check_window(changes.get("window_start", task.window_start), changes.get("due_at", task.due_at))
    status = changes.pop("status", None)
    for name, value in changes.items():
        setattr(task, name, value)
    if status is not None and status != task.status:
        # Done is done, early or late: the window only says when it is worth doing.
        task.status = TaskStatus(status)
        task.completed_at = utcnow() if task.status == TaskStatus.DONE else None
    _audit("task.update", task, episode)
    return task


# --- appointments --------------------------------------------------------------------------

def book_appointment(*, episode: Episode, fields: dict, actor: User):
    cases.must_be_open(episode)
    _known_program(fields)
    appointment, created = _create_once(Appointment, fields, ("kind", "starts_at", "program_id", "location"),
                                        episode_id=episode.id, created_by_id=actor.id)
    _audit("appointment.create" if created else "appointment.read", appointment, episode)
    if created:
        signals.appointment_changed.send(appointment, change="booked")
    return appointment, created


#: How early a visit may be marked attended: a patient may be seen a little before the booked
#: time, and phones' clocks drift. A visit is missed only once it has started.
ATTENDED_EARLIEST_BEFORE_START = dt.timedelta(minutes=15)


def _outcome_after_start(status: str, starts_at: dt.datetime, *, field: str) -> None:
    """Attended and missed are facts about a visit that has started (the outcome measures count
    attended visits at their `starts_at`), whichever of the two a change sets."""
    earliest = {AppointmentStatus.ATTENDED: ATTENDED_EARLIEST_BEFORE_START,
                AppointmentStatus.MISSED: dt.timedelta(0)}.get(AppointmentStatus(status))
    if earliest is None or starts_at <= utcnow() + earliest:
        return
    if field == "status":
        detail = (f"An appointment is {status} only once it has started; for a patient seen early, set "
                  "starts_at to when they came, in the same change.")
    else:
        detail = f"A {status} appointment cannot move into the future; to rebook it, set status to scheduled too."
    raise Problem(422, detail, errors={field: [f"A {status} appointment cannot start in the future."]})


def _known_program(fields: Mapping) -> None:
    if fields.get("program_id") is not None:
        programs.named_program(fields["program_id"], field="program_id")


def list_appointments(*, episode: Episode, cursor: str | None, limit: int):
    stmt = sa.select(Appointment).where(Appointment.episode_id == episode.id)
    return _list(stmt, episode=episode, cursor=cursor, limit=limit,
                 keys=[Appointment.starts_at, Appointment.id], action="appointment.list")


def update_appointment(*, appointment: Appointment, changes: dict) -> Appointment:
    episode = _open_episode_of(appointment)
    _known_program(changes)
    status = changes.pop("status", None)
    moved = "starts_at" in changes and changes["starts_at"] != appointment.starts_at
    if moved or (status is not None and status != appointment.status):
        _outcome_after_start(status or appointment.status, changes.get("starts_at", appointment.starts_at),
                             field="starts_at" if status in (None, appointment.status) else "status")
    for name, value in changes.items():
        setattr(appointment, name, value)
    change = "rescheduled" if moved else None
    if status is not None and status != appointment.status:
        appointment.status = AppointmentStatus(status)
        appointment.status_changed_at = utcnow()
        change = status
    db.session.flush()
    _audit("appointment.update", appointment, episode)
    if change is not None:
        signals.appointment_changed.send(appointment, change=change)
    return appointment
