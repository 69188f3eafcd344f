"""Who sees which handoffs: those on the episodes they may see (backend.cases.scopes)."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.access import Scope
from backend.auth.models import User
from backend.cases.models import Episode
from backend.cases.scopes import episode_visible_to
from backend.extensions import db
from backend.handoffs.models import Handoff


def _visible_to(user: User) -> sa.ColumnElement[bool]:
    return sa.exists().where(Episode.id == Handoff.episode_id, episode_visible_to(user))


def _patients(handoff: Handoff) -> list:
    return [db.session.scalar(sa.select(Episode.patient_id).where(Episode.id == handoff.episode_id))]


HANDOFFS = Scope(Handoff, "handoff", _visible_to, _patients)
