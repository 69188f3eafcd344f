"""Benchmark: `GET /api/v1/caseload` for a coach with 60 open episodes, in process.

Seeds a fresh database at two scales — the full one (50,000 patients, 60,000 episodes,
600,000 encounters over 100 coaches) and one a hundred times smaller — then times the
caseload request (sign-in excluded; the audit write included) and prints median and p99.

    .venv/bin/python benchmarks/caseload.py                      # SQLite in a temporary file
    .venv/bin/python benchmarks/caseload.py --database-url postgresql+psycopg://…/empty_db
    .venv/bin/python benchmarks/caseload.py --scale 0.1          # quicker, smaller

The PostgreSQL database must be empty: the benchmark migrates it and fills it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from backend import create_app  # noqa: E402
from backend.cases.models import Appointment, Encounter, Episode, Patient, Task  # noqa: E402
from backend.config import Config  # noqa: E402
from benchmarks.common import PASSWORD, analyze, insert_rows, make_staff  # noqa: E402

COACHES = 100
TARGET_OPEN = 60


def seed(app, *, patients: int, episodes: int, encounters: int, rng: random.Random) -> str:
    """Fill the database; return the username of the coach with 60 open episodes."""
    now = dt.datetime.now(dt.timezone.utc)
    with app.app_context():
        nurse, coaches = make_staff(COACHES)
        coach_ids, nurse_id = [c.id for c in coaches], nurse.id

        patient_rows = [{"id": uuid.uuid4(), "given_name": f"G{i}", "family_name": f"F{i}", "mrn": f"B{i}",
                         "birth_date": dt.date(1960 + i % 40, 1 + i % 12, 1 + i % 28), "timezone": "America/New_York",
                         "language": "en", "sms_status": "unknown", "registered_by_id": nurse_id,
                         "version": 1, "created_at": now, "updated_at": now} for i in range(patients)]
        insert_rows(Patient, patient_rows)

        # One open episode per patient at most: the first `open_count` patients have one,
        # 60 of them with the target coach; every other episode is closed.
        open_count = min(patients, max(TARGET_OPEN * 2, episodes // 10))
        episode_rows = []
        for i in range(episodes):
            patient = patient_rows[i % patients]
            is_open = i < open_count
            coach_id = coach_ids[0] if i < TARGET_OPEN else coach_ids[1 + rng.randrange(COACHES - 1)]
            arrived = now - dt.timedelta(hours=rng.randrange(24, 24 * 60))
            episode_rows.append({
                "id": uuid.uuid4(), "patient_id": patient["id"], "status": "open" if is_open else "closed",
                "level": "emergency_department", "presenting_reason": "overdose", "arrived_at": arrived,
                "opened_at": arrived, "opened_by_id": nurse_id, "coach_id": coach_id,
                "discharged_at": arrived + dt.timedelta(hours=6),
                "closed_at": None if is_open else arrived + dt.timedelta(days=20),
                "close_reason": None if is_open else "engaged_in_care", "naloxone_given": False, "moud": "none",
                "recent_overdose": False, "version": 1, "updated_at": now})
        insert_rows(Episode, episode_rows)

        encounter_rows, task_rows, appointment_rows = [], [], []
        for i in range(encounters):
            episode = episode_rows[i % episodes]
            encounter_rows.append({
                "id": uuid.uuid4(), "episode_id": episode["id"], "author_id": episode["coach_id"],
                "kind": rng.choice(["phone", "attempt", "in_person", "sms"]),
                "outcome": rng.choice(["reached", "no_answer", "left_message"]),
                "occurred_at": episode["arrived_at"] + dt.timedelta(hours=rng.randrange(6, 24 * 30)),
                "created_at": now})
            if len(encounter_rows) >= 20_000:
                insert_rows(Encounter, encounter_rows)
                encounter_rows = []
        insert_rows(Encounter, encounter_rows)
        for episode in episode_rows[:open_count]:
            for hours in (-6, 30):
                task_rows.append({"id": uuid.uuid4(), "episode_id": episode["id"], "title": "Follow up",
                                  "due_at": now + dt.timedelta(hours=hours), "assignee_id": episode["coach_id"],
                                  "status": "open", "version": 1, "created_at": now, "updated_at": now})
            appointment_rows.append({"id": uuid.uuid4(), "episode_id": episode["id"], "kind": "transition_clinic",
                                     "starts_at": now + dt.timedelta(hours=rng.randrange(-72, 72)),
                                     "status": rng.choice(["scheduled", "missed", "attended"]),
                                     "version": 1, "created_at": now, "updated_at": now})
        insert_rows(Task, task_rows)
        insert_rows(Appointment, appointment_rows)
        analyze()
    return "bench.coach0"


def measure(app, username: str, *, requests: int) -> dict:
    client = app.test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": username, "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(10):  # warm caches and the connection pool
        assert client.get("/api/v1/caseload", headers=headers).status_code == 200
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/api/v1/caseload", headers=headers)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200 and len(response.get_json()["items"]) == TARGET_OPEN
    timings.sort()
    return {"median_ms": round(statistics.median(timings), 1),
            "p99_ms": round(timings[min(len(timings) - 1, int(len(timings) * 0.99))], 1)}


def run(database_url: str, *, scale: float, requests: int) -> dict:
    os.environ.update({"DATABASE_URL": database_url, "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST_KIB": "64",
                       "LOG_LEVEL": "WARNING"})
    app = create_app(Config())
    with app.app_context():
        upgrade()
    # Never below what the target coach's 60 open episodes need.
    sizes = {"patients": max(200, int(50_000 * scale)), "episodes": max(240, int(60_000 * scale)),
             "encounters": max(2_400, int(600_000 * scale))}
    started = time.perf_counter()
    username = seed(app, rng=random.Random(7), **sizes)
    seeded_s = round(time.perf_counter() - started, 1)
    return {**sizes, "seed_seconds": seeded_s, **measure(app, username, requests=requests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1)")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    results = {}
    for label, factor in (("small", args.scale / 100), ("full", args.scale)):
        if args.database_url:
            url = _fresh_postgres(args.database_url, label)
        else:
            url = f"sqlite:///{tempfile.mkdtemp()}/bench-{label}.db"
        results[label] = run(url, scale=factor, requests=args.requests)
        print(label, json.dumps(results[label]), flush=True)
    ratio = results["full"]["median_ms"] / results["small"]["median_ms"]
    print(json.dumps({"database": "postgresql" if args.database_url else "sqlite",
                      "median_ms": results["full"]["median_ms"], "p99_ms": results["full"]["p99_ms"],
                      "full_over_small_median": round(ratio, 2)}))


def _fresh_postgres(url: str, label: str) -> str:
    """A new database beside the given one, so the two scales do not mix."""
    name = f"bridgeline_bench_{label}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return sa.make_url(url).set(database=name).render_as_string(hide_password=False)


if __name__ == "__main__":
    main()
