"""System programs some tests drive (nginx, openssl): CI installs them (`.ci/run`), a developer's
machine may lack them."""

from __future__ import annotations

import os

import pytest


def system_binary(path: str, package: str) -> str:
    """`path` if it is there; otherwise the test is skipped — or fails when `CI=true`, so that a
    CI machine without the program can never pass by skipping."""
    if os.access(path, os.X_OK):
        return path
    message = f"{path} is missing: install Debian's {package} package (.ci/run does)"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)
