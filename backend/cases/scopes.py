"""Who sees which patients and episodes (privacy.md "minimum necessary").

- a coach: episodes they coach, and those episodes' patients;
- an ED nurse: episodes at the ED or inpatient level and episodes they opened, and the patients
  of those episodes or whom they registered (the exact-MRN lookup that prevents duplicates is
  not scoped: `service.list_patients(mrn=…)`);
- clinic staff: everything;
- an admin: nothing (an admin is not a clinician; the routes refuse admins with 403 anyway).
"""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.access import Scope
from backend.auth.models import Role, User
from backend.cases.models import HOSPITAL_LEVELS, Appointment, Episode, Patient, Task
from backend.extensions import db


def episode_visible_to(user: User, *, coach_id=Episode.coach_id, level=Episode.level,
                       opened_by_id=Episode.opened_by_id) -> sa.ColumnElement[bool]:
    """Whether `user` sees an episode; the column arguments let a caller ask the same of other
    columns (an aliased episode, or the values an episode had before a change)."""
    if user.role == Role.CLINIC_STAFF:
        return sa.true()
    if user.role == Role.COACH:
        return coach_id == user.id
    if user.role == Role.ED_NURSE:
        return sa.or_(level.in_(HOSPITAL_LEVELS), opened_by_id == user.id)
    return sa.false()


def patient_visible_to(user: User) -> sa.ColumnElement[bool]:
    if user.role == Role.CLINIC_STAFF:
        return sa.true()
    through_episode = sa.exists().where(Episode.patient_id == Patient.id, episode_visible_to(user))
    if user.role == Role.ED_NURSE:
        return sa.or_(Patient.registered_by_id == user.id, through_episode)
    return through_episode


def on_visible_episode(model):
    """The scope rule of records that belong to an episode (`model.episode_id`): the episode's."""
    def visible_to(user: User) -> sa.ColumnElement[bool]:
        return sa.exists().where(Episode.id == model.episode_id, episode_visible_to(user))
    return visible_to


def patient_of_episode(record) -> list:
    """The patient of a record that belongs to an episode, for the audit trail."""
    return [db.session.scalar(sa.select(Episode.patient_id).where(Episode.id == record.episode_id))]


PATIENTS = Scope(Patient, "patient", patient_visible_to, lambda patient: [patient.id])
EPISODES = Scope(Episode, "episode", episode_visible_to, lambda episode: [episode.patient_id])
TASKS = Scope(Task, "task", on_visible_episode(Task), patient_of_episode)
APPOINTMENTS = Scope(Appointment, "appointment", on_visible_episode(Appointment), patient_of_episode)
