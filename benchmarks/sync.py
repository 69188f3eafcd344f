"""Benchmark: `GET /api/v1/sync` for a coach with 60 open episodes and a month of history each.

Seeds a fresh database: 100 coaches with open and closed episodes (their history fills the
change feed, as it would in production), the target coach's 60 open episodes each with a
month of work (12 encounters, 6 tasks, 3 appointments, a handoff with its events, 15 texts),
and a second coach with 6 such episodes. Then, in process and with `Accept-Encoding: gzip`:
the first sync (all pages) and an incremental sync with nothing new — time, bytes on the wire
and SQL statements, for both coaches (the statement counts must not differ).

    .venv/bin/python benchmarks/sync.py                          # SQLite in a temporary file
    .venv/bin/python benchmarks/sync.py --database-url postgresql+psycopg://…/empty_db

The PostgreSQL database must be empty: the benchmark migrates it and fills it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import statistics
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402

from backend.cases.models import Appointment, Encounter, Episode, Patient, Task  # noqa: E402
from backend.extensions import db  # noqa: E402
from backend.handoffs.models import Handoff, HandoffEvent  # noqa: E402
from backend.outreach.models import Message  # noqa: E402
from backend.sync.models import Change  # noqa: E402
from benchmarks.common import (  # noqa: E402
    PASSWORD,
    Rows,
    Statements,
    analyze,
    make_staff,
    migrated_app,
)

COACHES = 100
SUMMARY = {"moud": "buprenorphine", "last_dose_at": None, "naloxone_given": True, "risks": "Lives alone",
           "plan": "Buprenorphine 16 mg daily; clinic within 72 h", "goals": "Back to work", "note": None}


class Seed:
    """Bulk rows for episodes and their history, inserted in batches."""

    def __init__(self, nurse_id: uuid.UUID, rng: random.Random) -> None:
        self.nurse_id, self.rng, self.now = nurse_id, rng, dt.datetime.now(dt.timezone.utc)
        self.rows = Rows(Patient, Episode, Encounter, Task, Appointment, Handoff, HandoffEvent, Message)
        self.count = 0

    def episode(self, coach_id: uuid.UUID, *, is_open: bool, month: bool) -> None:
        """One patient with one episode; `month` adds a month of coaching history."""
        self.count += 1
        now, rng = self.now, self.rng
        patient_id, episode_id = uuid.uuid4(), uuid.uuid4()
        arrived = now - dt.timedelta(days=31 if month else rng.randrange(2, 60))
        self._add(Patient, id=patient_id, given_name=f"Given{self.count}", family_name=f"Family{self.count}",
                  mrn=f"S{self.count}", birth_date=dt.date(1970 + self.count % 30, 1 + self.count % 12, 1),
                  phone=f"+1617555{self.count % 10_000:04d}", timezone="America/New_York", language="en",
                  sms_status="opted_in", registered_by_id=self.nurse_id, version=1, created_at=arrived,
                  updated_at=arrived)
        self._add(Episode, id=episode_id, patient_id=patient_id, status="open" if is_open else "closed",
                  level="transition_clinic", presenting_reason="overdose", arrived_at=arrived, opened_at=arrived,
                  opened_by_id=self.nurse_id, coach_id=coach_id, discharged_at=arrived + dt.timedelta(hours=8),
                  closed_at=None if is_open else now - dt.timedelta(days=1),
                  close_reason=None if is_open else "engaged_in_care", naloxone_given=True, moud="buprenorphine",
                  recent_overdose=False, version=3, updated_at=arrived)
        encounters = 12 if month else 3
        for day in sorted(rng.sample(range(1, 31), encounters)):
            self._add(Encounter, id=uuid.uuid4(), episode_id=episode_id, author_id=coach_id,
                      kind=rng.choice(["phone", "in_person", "attempt", "sms"]),
                      outcome=rng.choice(["reached", "no_answer", "left_message"]),
                      occurred_at=arrived + dt.timedelta(days=day), duration_minutes=rng.randrange(5, 45),
                      location="Clinic" if day % 2 else None, note="Checked in; doing okay, wants to keep going.",
                      created_at=arrived + dt.timedelta(days=day))
        if not month:
            return
        for n in range(6):
            due = arrived + dt.timedelta(days=5 * n + 3)
            done = due < now - dt.timedelta(days=2)
            self._add(Task, id=uuid.uuid4(), episode_id=episode_id, title="Call to follow up on the clinic visit",
                      due_at=due, window_start=due - dt.timedelta(days=1), assignee_id=coach_id,
                      status="done" if done else "open", completed_at=due if done else None,
                      created_by_id=coach_id, created_at=due - dt.timedelta(days=2), version=2 if done else 1,
                      updated_at=due)
        for n in range(3):
            starts = arrived + dt.timedelta(days=3 + 12 * n, hours=14)
            self._add(Appointment, id=uuid.uuid4(), episode_id=episode_id, kind="transition_clinic", starts_at=starts,
                      location="Bridge Clinic, 2nd floor", status="attended" if starts < now else "scheduled",
                      status_changed_at=starts if starts < now else None, created_by_id=coach_id,
                      created_at=starts - dt.timedelta(days=3), version=1, updated_at=starts)
        handoff_id = uuid.uuid4()
        self._add(Handoff, id=handoff_id, episode_id=episode_id, from_level="emergency_department",
                  to_level="transition_clinic", method="warm_in_person", summary=SUMMARY, status="completed",
                  accept_by=arrived + dt.timedelta(days=1), arrive_by=arrived + dt.timedelta(days=3),
                  arrived_at=arrived + dt.timedelta(days=2), created_by_id=self.nurse_id, created_at=arrived,
                  version=3, updated_at=arrived + dt.timedelta(days=2))
        for seq, status in enumerate(("sent", "accepted", "completed"), start=1):
            self._add(HandoffEvent, id=uuid.uuid4(), handoff_id=handoff_id, seq=seq, status=status,
                      at=arrived + dt.timedelta(days=seq - 1), by_id=self.nurse_id, note=None, kind="transition")
        for n in range(15):
            at = arrived + dt.timedelta(days=2 * n + 1, hours=14)
            inbound = n % 4 == 3
            self._add(Message, id=uuid.uuid4(), patient_id=patient_id, episode_id=episode_id,
                      direction="inbound" if inbound else "outbound",
                      kind="reply" if inbound else ("check_in" if n % 2 else "staff"),
                      body="ok thanks" if inbound else "Hi, it's your coach checking in. How are you doing?",
                      phone=f"+1617555{self.count % 10_000:04d}",
                      status="received" if inbound else ("delivered" if at < now else "queued"),
                      send_at=at, due_at=None if at < now else at, attempts=0 if inbound or at > now else 1,
                      claimed_at=None if inbound or at > now else at, sent_at=None if inbound or at > now else at,
                      status_at=at, created_at=at, updated_at=at, read_at=at if inbound else None)

    def _add(self, model, **row) -> None:
        # Timestamps stamped at different moments differ in their microseconds, which compress
        # far worse than the shared ones of `now + whole days`.
        row = {name: value.replace(microsecond=self.rng.randrange(1_000_000)) if isinstance(value, dt.datetime)
               else value for name, value in row.items()}
        self.rows.add(model, row)

    def flush(self) -> None:
        self.rows.flush()


def seed(app, *, scale: float, rng: random.Random) -> tuple[str, str]:
    """Fill the database; the usernames of the coach with 60 episodes and the one with 6."""
    with app.app_context():
        nurse, coaches = make_staff(COACHES)
        rows = Seed(nurse.id, rng)
        for coach, episodes in ((coaches[0], 60), (coaches[1], 6)):
            for _ in range(episodes):
                rows.episode(coach.id, is_open=True, month=True)
        others = coaches[2:]
        for i in range(int(20_000 * scale)):  # the rest of the program: a quarter still open
            rows.episode(others[i % len(others)].id, is_open=i % 4 == 0, month=i % 10 == 0)
        rows.flush()
        analyze()
        print("seeded", json.dumps({model.__tablename__: db.session.scalar(sa.select(sa.func.count())
                                                                            .select_from(model))
                                    for model in (Episode, Encounter, Message, Change)}), flush=True)
    return "bench.coach0", "bench.coach1"


def measure(app, username: str, *, repeats: int) -> dict:
    client = app.test_client()
    token = client.post("/api/v1/auth/tokens", json={"username": username, "password": PASSWORD,
                                                     "device_name": "bench"}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}

    def sync(cursor=None):
        response = client.get("/api/v1/sync", headers=headers, query_string={"cursor": cursor} if cursor else {})
        assert response.status_code == 200, response.data[:300]
        compressed = response.headers.get("Content-Encoding") == "gzip"
        body = json.loads(gzip.decompress(response.data) if compressed else response.data)
        return body, len(response.data), len(gzip.decompress(response.data)) if compressed else len(response.data)

    def first_sync():
        cursor, wire, raw, episodes, pages = None, 0, 0, 0, 0
        while True:
            body, sent, size = sync(cursor)
            wire, raw, cursor, pages = wire + sent, raw + size, body["cursor"], pages + 1
            episodes += len(body["changes"]["episodes"])
            if not body["has_more"]:
                return cursor, wire, raw, episodes, pages

    statements = Statements()
    with app.app_context():
        engine = db.engine
    first_ms, empty_ms = [], []
    for _ in range(3):
        first_sync()  # warm caches and the connection pool
    for _ in range(repeats):
        started = time.perf_counter()
        cursor, wire, raw, episodes, pages = first_sync()
        first_ms.append((time.perf_counter() - started) * 1000)
    sa.event.listen(engine, "before_cursor_execute", statements)
    first_sync()
    first_statements, statements.count = statements.count, 0
    sync(cursor)
    empty_statements = statements.count
    sa.event.remove(engine, "before_cursor_execute", statements)
    for _ in range(repeats * 10):
        started = time.perf_counter()
        body, empty_wire, _ = sync(cursor)
        empty_ms.append((time.perf_counter() - started) * 1000)
        assert not any(body["changes"].values()) and not body["removed"]
    return {"episodes": episodes,
            "first_sync": {"median_ms": _ms(first_ms, 0.5), "p95_ms": _ms(first_ms, 0.95),
                           "wire_kb": round(wire / 1024, 1),
                           "json_kb": round(raw / 1024, 1), "pages": pages,
                           "statements_per_page": round(first_statements / pages, 1)},
            "empty_sync": {"median_ms": _ms(empty_ms, 0.5), "p95_ms": _ms(empty_ms, 0.95),
                           "wire_bytes": empty_wire, "statements": empty_statements}}


def _ms(timings: list[float], quantile: float) -> float:
    timings = sorted(timings)
    return round(statistics.median(timings) if quantile == 0.5 else timings[int(len(timings) * quantile)], 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the other coaches' 20,000 episodes")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    app = migrated_app(args.database_url, "bench-sync.db")
    started = time.perf_counter()
    big, small = seed(app, scale=args.scale, rng=random.Random(7))
    print("seed_seconds", round(time.perf_counter() - started, 1), flush=True)
    results = {"database": "postgresql" if args.database_url else "sqlite",
               "coach_60": measure(app, big, repeats=args.repeats),
               "coach_6": measure(app, small, repeats=args.repeats)}
    print(json.dumps(results, indent=1))
    print("targets: first sync < 60 KB gzipped and < 150 ms; empty sync < 1 KB and < 10 ms; "
          "statements per page equal for 60 and 6 episodes")


if __name__ == "__main__":
    main()
