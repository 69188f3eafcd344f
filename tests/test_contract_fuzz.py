"""Contract fuzzing: schemathesis against the running service's own OpenAPI document, signed in
as each role, over HTTP to the Procfile's `web` (gunicorn), as the phone and the black-box tests
reach it. No 5xx; every response has a documented status code, content type, headers and body.

It runs with the SQLite suite only: the contract layer is the same on PostgreSQL (whose run
covers the same endpoints functionally), and a second pass would add two minutes to CI.

Sign-out and device or account changes are left out of the run so that it keeps its session
(they are covered by their own tests). "Valid data must be accepted" is not a check here: a
schema cannot say which cursors or ids the server issued, so such requests rightly get 422/404.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.test_procfile import PROCFILE, ROOT, env, free_port, released, run, token_for  # noqa: F401

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,"
          "response_headers_conformance")
DEMO_ACCOUNTS = {"coach": ("coach.maria", "demo-coach-pass"), "clinic_staff": ("clinic.riley", "demo-clinic-pass"),
                 "ed_nurse": ("nurse.jordan", "demo-nurse-pass"), "admin": ("admin", "demo-admin-pass")}
SCHEMATHESIS = str(Path(sys.executable).parent / "schemathesis")


@contextlib.contextmanager
def web_logging_to(path: Path, env: dict):  # noqa: F811
    """The Procfile's web, its (thousands of) log lines to a file: a pipe nobody reads fills up
    and stalls the server."""
    port = free_port()
    with path.open("w") as log:
        proc = subprocess.Popen(["bash", "-c", PROCFILE["web"]], env={**env, "PORT": str(port)}, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/health", timeout=10).status_code == 200:
                    break
            assert proc.poll() is None and time.monotonic() < deadline, path.read_text()[-2000:]
            time.sleep(0.2)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.once
def test_every_role_fuzzing_the_contract_gets_only_documented_answers(released, tmp_path):  # noqa: F811
    assert run("flask --app backend demo seed", released).returncode == 0
    with web_logging_to(tmp_path / "web.log", released) as base:
        tokens = {role: token_for(base, *account)["Authorization"] for role, account in DEMO_ACCOUNTS.items()}

        def fuzz(role: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [SCHEMATHESIS, "run", f"{base}/api/v1/openapi.json", "-H", f"Authorization: {tokens[role]}",
                 "--checks", CHECKS, "--max-examples", "3", "--seed", "20261121", "--no-color",
                 "--exclude-path", "/api/v1/auth/tokens/current",
                 "--exclude-path-regex", "^/api/v1/(me/devices|users)/"],
                cwd=tmp_path, capture_output=True, text=True, timeout=900)

        with ThreadPoolExecutor(len(tokens)) as pool:
            results = dict(zip(tokens, pool.map(fuzz, tokens), strict=True))

    for role, result in results.items():
        summary = result.stdout[-4000:]
        assert result.returncode == 0, f"{role}:\n{summary}"
        assert " generated, " in summary, f"{role}: nothing was tested:\n{summary}"
        # Only sign-in with made-up credentials may answer nothing but 401: the session held.
        unauthorized = re.search(r"401 Unauthorized \((\d+) operation", result.stdout)
        assert unauthorized is None or unauthorized.group(1) == "1" and "- POST /api/v1/auth/tokens\n" in \
            result.stdout, f"{role} lost its session:\n{summary}"
