"""Fixtures for the consent tests: the cases fixtures, programs in the directory and handoffs."""

from __future__ import annotations

from tests.cases.conftest import clinic, nurse, open_episode, register  # noqa: F401 - shared fixtures
from tests.handoffs.conftest import program, send  # noqa: F401 - shared fixtures
