"""What a user's phone keeps: the open episodes they may see (and, through them, their records).

A closed episode, or one that left the user's scope, is `removed` at the next sync."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.models import User
from backend.cases.models import Episode
from backend.cases.scopes import episode_visible_to


def on_the_phone(user: User, episode=Episode) -> sa.ColumnElement[bool]:
    """Whether the phone of `user` keeps an episode (`episode`: an alias to ask of another row)."""
    return sa.and_(episode.is_open, episode_visible_to(
        user, coach_id=episode.coach_id, level=episode.level, opened_by_id=episode.opened_by_id))
