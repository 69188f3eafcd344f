"""Fixtures for the directory's tests: programs made through the API."""

from __future__ import annotations

from tests.handoffs.conftest import program  # noqa: F401 - shared fixture
