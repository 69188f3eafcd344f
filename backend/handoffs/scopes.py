"""Who sees which handoffs: those on the episodes they may see (backend.cases.scopes)."""

from __future__ import annotations

from backend.auth.access import Scope
from backend.cases.scopes import on_visible_episode, patient_of_episode
from backend.handoffs.models import Handoff

HANDOFFS = Scope(Handoff, "handoff", on_visible_episode(Handoff), patient_of_episode)
