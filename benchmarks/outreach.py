"""Benchmark: the SMS dispatcher over a large outbox, and planning check-ins for many discharges.

Seeds a fresh database with 20,000 opted-in patients and their open, discharged episodes, then:

1. plans the post-discharge check-ins of 10,000 episodes one at a time, as discharges do
   (`planning.plan_check_ins`), and of 10,000 more in one `planning.batch()`;
2. adds 2,000,000 messages of history (sent, delivered, cancelled, replies — over the past year,
   none in the last week, so the rate limit lets every due text go) and 10,000 due automatic
   texts;
3. runs the dispatcher against a fake Twilio in another process (the real `twilio` library, HTTP
   on 127.0.0.1) until the 10,000 are sent, timing the claim of each batch and the whole run.

    .venv/bin/python benchmarks/outreach.py                       # SQLite in a temporary file
    .venv/bin/python benchmarks/outreach.py --database-url postgresql+psycopg://…/empty_db
    .venv/bin/python benchmarks/outreach.py --scale 0.05          # quicker, smaller

The PostgreSQL database must be empty. The send window is widened to the whole day so the run
does not depend on the hour it is started at (quiet hours are tested, not benchmarked).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
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

from backend import create_app, unit_of_work  # noqa: E402
from backend.auth import service as auth_service  # noqa: E402
from backend.auth.models import Role  # noqa: E402
from backend.cases.models import Episode, Patient  # noqa: E402
from backend.config import Config  # noqa: E402
from backend.extensions import db  # noqa: E402
from backend.outreach import dispatcher, planning  # noqa: E402
from backend.outreach.models import Message  # noqa: E402
from benchmarks.common import analyze, insert_rows  # noqa: E402

STATUSES = ["delivered"] * 7 + ["sent", "undelivered", "cancelled"]
KINDS = ["check_in", "appointment_reminder", "staff", "reply"]


def serve_fake_twilio(urls, stop, counts) -> None:
    from tests.support.fake_twilio import FakeTwilio

    fake = FakeTwilio()
    urls.put(fake.url)
    stop.wait()
    counts.put(len(fake.received))
    fake.stop()


def seed_people(app, patients: int) -> list[uuid.UUID]:
    now = dt.datetime.now(dt.timezone.utc)
    with app.app_context():
        coach = auth_service.create_user(username="bench.coach", display_name="Maria Lopez", role=Role.COACH,
                                         password="benchmark passphrase")
        unit_of_work.commit()
        patient_rows = [{"id": uuid.uuid4(), "given_name": f"G{i}", "family_name": f"F{i}",
                         "birth_date": dt.date(1970 + i % 30, 1 + i % 12, 1 + i % 28), "phone": f"+1617{i:07d}",
                         "timezone": "America/New_York", "language": "en", "sms_status": "opted_in",
                         "version": 1, "created_at": now, "updated_at": now} for i in range(patients)]
        insert_rows(Patient, patient_rows)
        episode_ids = [uuid.uuid4() for _ in range(patients)]
        insert_rows(Episode, [{"id": episode_id, "patient_id": patient["id"], "status": "open",
                           "level": "transition_clinic", "presenting_reason": "overdose",
                           "arrived_at": now - dt.timedelta(hours=8), "opened_at": now - dt.timedelta(hours=8),
                           "coach_id": coach.id, "discharged_at": now - dt.timedelta(hours=1),
                           "naloxone_given": False, "moud": "none", "recent_overdose": False, "version": 1,
                           "updated_at": now} for episode_id, patient in zip(episode_ids, patient_rows, strict=True)])
        db.session.commit()
    return episode_ids


def plan(app, episode_ids: list[uuid.UUID], *, batched: bool) -> float:
    """Plan the check-ins of every episode: one at a time as a discharge does, or in one batch."""
    with app.app_context():
        started = time.perf_counter()
        with planning.batch() if batched else contextlib.nullcontext():
            for start in range(0, len(episode_ids), 500):
                chunk = episode_ids[start:start + 500]
                for episode in db.session.scalars(sa.select(Episode).where(Episode.id.in_(chunk))):
                    planning.plan_check_ins(episode)
        unit_of_work.commit()
        return time.perf_counter() - started


def seed_outbox(app, *, history: int, due: int, rng: random.Random) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    with app.app_context():
        patients = db.session.execute(sa.select(Patient.id, Episode.id).join(Episode)).all()
        rows = []
        for i in range(history):
            patient_id, episode_id = patients[i % len(patients)]
            at = now - dt.timedelta(minutes=rng.randrange(8 * 24 * 60, 365 * 24 * 60))
            kind = rng.choice(KINDS)
            inbound = kind == "reply"
            rows.append({"id": uuid.uuid4(), "patient_id": patient_id, "episode_id": episode_id,
                         "direction": "inbound" if inbound else "outbound", "kind": kind,
                         "body": "Hi, checking in. How are you doing? Reply STOP to opt out.",
                         "phone": "+16170000000", "status": "received" if inbound else rng.choice(STATUSES),
                         "send_at": at, "attempts": 1, "claimed_at": None if inbound else at, "sent_at": at,
                         "status_at": at, "created_at": at, "updated_at": at, "read_at": at if inbound else None})
            if len(rows) == 20_000:
                insert_rows(Message, rows)
                rows = []
        insert_rows(Message, rows)
        insert_rows(Message, [{"id": uuid.uuid4(), "patient_id": patients[i % len(patients)][0],
                           "episode_id": patients[i % len(patients)][1], "direction": "outbound", "kind": "check_in",
                           "body": "Hi, it's Maria checking in. How are you doing? Reply STOP to opt out.",
                           "status": "queued", "send_at": now, "due_at": now - dt.timedelta(seconds=i % 600),
                           "attempts": 0, "status_at": now, "created_at": now, "updated_at": now}
                          for i in range(due)])
        analyze()


def send(app, due: int) -> dict:
    context = multiprocessing.get_context("spawn")
    urls, counts, stop = context.Queue(), context.Queue(), context.Event()
    fake = context.Process(target=serve_fake_twilio, args=(urls, stop, counts), daemon=True)
    fake.start()
    app.config.update(SMS_BACKEND="twilio", TWILIO_ACCOUNT_SID="AC" + "0" * 32, TWILIO_AUTH_TOKEN="bench",
                      TWILIO_FROM_NUMBER="+16175550000", TWILIO_API_BASE_URL=urls.get(timeout=30))
    claims_ms = []
    original = dispatcher.claim_due

    def timed_claim(**kwargs):
        started = time.perf_counter()
        claimed = original(**kwargs)
        unit_of_work.commit()
        claims_ms.append((time.perf_counter() - started) * 1000 * 100 / max(1, len(claimed)))
        return claimed

    dispatcher.claim_due = timed_claim
    try:
        with app.app_context():
            started = time.perf_counter()
            tally = dispatcher.dispatch_and_commit()
            elapsed = time.perf_counter() - started
    finally:
        dispatcher.claim_due = original
        stop.set()
    received = counts.get(timeout=30)
    fake.join(timeout=10)
    assert tally.sent == due == received, (tally, received)
    passes = claims_ms[:-1] or claims_ms  # the last, empty pass claims nothing
    ordered = sorted(passes)
    return {"sent": tally.sent, "texts_per_second": round(tally.sent / elapsed),
            "claim_ms_per_100_median": round(statistics.median(ordered), 1),
            "claim_ms_per_100_p95": round(ordered[int(len(ordered) * 0.95)], 1),
            "claim_ms_per_100_max": round(ordered[-1], 1), "claim_ms_first_pass": round(passes[0], 1)}


def run(database_url: str, *, scale: float) -> dict:
    os.environ.update({"DATABASE_URL": database_url, "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST_KIB": "64",
                       "LOG_LEVEL": "WARNING", "SMS_SEND_WINDOW_START": "00:00", "SMS_SEND_WINDOW_END": "23:59:59"})
    app = create_app(Config())
    with app.app_context():
        upgrade()
    patients, history = max(100, int(10_000 * scale)), int(2_000_000 * scale)
    episode_ids = seed_people(app, 2 * patients)
    one_by_one = plan(app, episode_ids[:patients], batched=False)
    batched = plan(app, episode_ids[patients:], batched=True)
    started = time.perf_counter()
    seed_outbox(app, history=history, due=patients, rng=random.Random(7))
    seeded_s = time.perf_counter() - started
    return {"discharges_planned": patients, "planning_seconds_one_by_one": round(one_by_one, 2),
            "planning_seconds_batched": round(batched, 2), "history": history, "seed_seconds": round(seeded_s),
            **send(app, patients)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1)")
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench-outreach.db"
    result = run(url, scale=args.scale)
    print(json.dumps({"database": sa.make_url(url).get_backend_name(), **result}))


if __name__ == "__main__":
    main()
