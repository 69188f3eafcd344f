"""Fixtures for the read models' tests: the cases fixtures (staff, patients, episodes) and the
handoff-sending helper."""

from __future__ import annotations

from tests.cases.conftest import clinic, nurse, open_episode, register  # noqa: F401 - shared fixtures
from tests.handoffs.conftest import program, send  # noqa: F401 - shared fixtures
