"""Who sees what of the handoffs module: handoffs and consents follow their episode's or
patient's scope (backend.cases.scopes); the programs directory is no patient data, so every
signed-in role sees it."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.access import Scope
from backend.auth.models import User
from backend.cases.models import Episode, Patient
from backend.cases.scopes import episode_visible_to, patient_visible_to
from backend.extensions import db
from backend.handoffs.models import Consent, Handoff, Program


def _visible_to(user: User) -> sa.ColumnElement[bool]:
    return sa.exists().where(Episode.id == Handoff.episode_id, episode_visible_to(user))


def _patients(handoff: Handoff) -> list:
    return [db.session.scalar(sa.select(Episode.patient_id).where(Episode.id == handoff.episode_id))]


HANDOFFS = Scope(Handoff, "handoff", _visible_to, _patients)
CONSENTS = Scope(Consent, "consent",
                 lambda user: sa.exists().where(Patient.id == Consent.patient_id, patient_visible_to(user)),
                 lambda consent: [consent.patient_id])
PROGRAMS = Scope(Program, "program", lambda user: sa.true())
