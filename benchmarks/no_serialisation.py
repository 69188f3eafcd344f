"""Benchmark: no request waits on a lock another request holds (PostgreSQL).

N processes (as N gunicorn workers would be) each send one request at the same moment; each
request writes a row of its own patient, records its audit event, and is then made to take
20 ms more inside its transaction (`pg_sleep` just before COMMIT, after the audit event is
written: where a durable commit's wait falls). Without a shared lock the N requests finish
together, in about one request's time; a lock held to commit (the audit chain head before the
sequencer) makes them take turns, N × 20 ms.

    .venv/bin/python benchmarks/no_serialisation.py --database-url postgresql+psycopg://…/empty_db [--n 8]

Prints one request's time alone (median), the N requests' wall time together (median of
`--rounds`), and their ratio. Target: under 2 for N = 8.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402
from flask import g, has_request_context  # noqa: E402

from benchmarks.caseload import _fresh_postgres  # noqa: E402
from benchmarks.common import PASSWORD, migrated_app  # noqa: E402

#: How long each request is made to wait inside its transaction (`--sleep-ms`).
SLEEP_SECONDS = float(os.environ.get("BENCH_SLEEP_MS", "20")) / 1000


def bench_app(url: str):
    """The app with one extra route: write a row of one patient, audit it, then wait 20 ms in
    the transaction before it commits."""
    from backend import create_app
    from backend.audit import service as audit
    from backend.auth.access import signed_in
    from backend.config import Config
    from backend.extensions import db

    os.environ.update({"DATABASE_URL": url, "LOG_LEVEL": "WARNING", "ARGON2_TIME_COST": "1",
                       "ARGON2_MEMORY_COST_KIB": "64"})
    app = create_app(Config())

    @signed_in
    def slow_write(patient_id):
        db.session.execute(sa.text("UPDATE patients SET updated_at = now() WHERE id = :id"), {"id": patient_id})
        audit.record("patient.update", resource_type="patient", resource_id=patient_id, patient_ids=[patient_id])
        g.bench_sleep = True
        return {}, 200

    app.add_url_rule("/_bench/slow-write/<uuid:patient_id>", view_func=slow_write, methods=["POST"])

    @sa.event.listens_for(db.session, "before_commit")
    def wait_inside_the_transaction(session):
        if has_request_context() and g.pop("bench_sleep", False):
            session.execute(sa.text("SELECT pg_sleep(:s)"), {"s": SLEEP_SECONDS})

    return app


def seed(url: str, n: int) -> tuple[str, list[str]]:
    from backend.auth.models import Role
    from benchmarks.common import make_staff

    app = migrated_app(url, "unused.db")
    with app.app_context():
        make_staff(0)
    client = app.test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": "bench.nurse", "password": PASSWORD}).get_json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    patients = []
    for i in range(n):
        response = client.post("/api/v1/patients", headers=headers, json={
            "mrn": f"NS-{uuid.uuid4().hex[:8]}", "given_name": "Alex", "family_name": f"R{i}",
            "birth_date": "1990-04-02"})
        assert response.status_code == 201, response.get_json()
        patients.append(response.get_json()["id"])
    assert Role.ED_NURSE
    return token["token"], patients


def _worker(url: str, token: str, patient: str, rounds: int, barrier, results) -> None:
    app = bench_app(url)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.post(f"/_bench/slow-write/{patient}", headers=headers).status_code == 200  # warm
    for r in range(rounds):
        barrier.wait()
        began = time.perf_counter()
        status = client.post(f"/_bench/slow-write/{patient}", headers=headers).status_code
        results.put((r, began, time.perf_counter(), status))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="an EMPTY PostgreSQL database")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--sleep-ms", type=float, default=20, help="the wait inside each transaction (default 20)")
    args = parser.parse_args()
    os.environ["BENCH_SLEEP_MS"] = str(args.sleep_ms)  # the spawned workers read it at import
    global SLEEP_SECONDS
    SLEEP_SECONDS = args.sleep_ms / 1000
    url = _fresh_postgres(args.database_url, "noserial")
    token, patients = seed(url, args.n)

    app = bench_app(url)
    client, headers = app.test_client(), {"Authorization": f"Bearer {token}"}
    alone = []
    for _ in range(args.rounds + 3):
        began = time.perf_counter()
        assert client.post(f"/_bench/slow-write/{patients[0]}", headers=headers).status_code == 200
        alone.append((time.perf_counter() - began) * 1000)
    one = statistics.median(alone[3:])

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(args.n), context.Queue()
    workers = [context.Process(target=_worker, args=(url, token, patients[i], args.rounds, barrier, results))
               for i in range(args.n)]
    for worker in workers:
        worker.start()
    answers = [results.get(timeout=120) for _ in range(args.n * args.rounds)]
    for worker in workers:
        worker.join()
    assert {status for *_, status in answers} == {200}, answers
    walls = []
    for r in range(args.rounds):
        batch = [a for a in answers if a[0] == r]
        walls.append((max(a[2] for a in batch) - min(a[1] for a in batch)) * 1000)
    together = statistics.median(walls)
    print(json.dumps({"n": args.n, "one_request_ms": round(one, 1), "n_together_ms": round(together, 1),
                      "n_together_max_ms": round(max(walls), 1), "ratio": round(together / one, 2),
                      "serialised_would_be_ms": round(args.n * SLEEP_SECONDS * 1000 + one - SLEEP_SECONDS * 1000, 1)}))


if __name__ == "__main__":
    main()
