"""Benchmark: `GET /api/v1/reports/outcomes` over 60,000 discharged episodes.

Seeds a fresh database with 60,000 ED episodes discharged in the first half of 2026 and 10,000
discharged before it, each with a history like the program's: three encounters (one reached,
mostly), two appointments (attended, mostly), a handoff or two with their events, five texts,
a naloxone kit (70%) and an ED bridge followed by a dispensed supply (70%), and the hospital
visits the ADT feed reports: the index visit, and a return within 120 days (25%; an overdose in
40% of them).
Then, in process:
- the full recount of the report's stored facts (what the first report after deploying does);
- the report for the half year (all 60,000 episodes) and for one day of it, the facts current
  (as the clock keeps them): time and SQL statements (the counts must not differ);
- the half year's report after writes to 600 episodes since the last refresh (what a report does
  when the clock's refresh has not run yet): a reached encounter and a text's delivery each.

    .venv/bin/python benchmarks/outcomes.py                          # SQLite in a temporary file
    .venv/bin/python benchmarks/outcomes.py --scale 0.01             # a quick look
    .venv/bin/python benchmarks/outcomes.py --database-url postgresql+psycopg://…/empty_db

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
import time
import uuid
import zoneinfo

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402

from backend import unit_of_work  # noqa: E402
from backend.auth import service as auth_service  # noqa: E402
from backend.auth.models import Role  # noqa: E402
from backend.cases.models import Appointment, Encounter, Episode, LevelPeriod, Patient  # noqa: E402
from backend.continuity.models import MedicationSupply, NaloxoneEvent  # noqa: E402
from backend.extensions import db  # noqa: E402
from backend.handoffs.models import Handoff, HandoffEvent  # noqa: E402
from backend.interop.models import HospitalVisit  # noqa: E402
from backend.outreach.models import Message  # noqa: E402
from backend.reports import refresh  # noqa: E402
from benchmarks.common import (  # noqa: E402
    PASSWORD,
    Rows,
    Statements,
    analyze,
    make_staff,
    migrated_app,
)

IN_PERIOD, BEFORE = 60_000, 10_000
PERIOD = (dt.date(2026, 1, 1), dt.date(2026, 6, 30))
UTC = dt.timezone.utc
H, D = dt.timedelta(hours=1), dt.timedelta(days=1)
ZONE = zoneinfo.ZoneInfo("America/New_York")


class Seed:
    def __init__(self, nurse_id: uuid.UUID, coaches: list[uuid.UUID], rng: random.Random) -> None:
        self.nurse_id, self.coaches, self.rng = nurse_id, coaches, rng
        self.rows = Rows(Patient, Episode, LevelPeriod, Encounter, Appointment, Handoff, HandoffEvent, Message,
                         NaloxoneEvent, MedicationSupply, HospitalVisit)
        self.count = 0

    def episode(self, discharged: dt.datetime) -> None:
        self.count += 1
        rng, n = self.rng, self.count
        patient_id, episode_id, coach_id = uuid.uuid4(), uuid.uuid4(), rng.choice(self.coaches)
        arrived = discharged - rng.randrange(2, 20) * H
        opted_out = rng.random() < 0.05
        self._add(Patient, id=patient_id, given_name=f"Given{n}", family_name=f"Family{n}", mrn=f"O{n}",
                  birth_date=dt.date(1970 + n % 30, 1 + n % 12, 1), phone=f"+1617555{n % 10_000:04d}",
                  timezone="America/New_York", language="en", sms_status="opted_out" if opted_out else "opted_in",
                  sms_status_at=discharged + 3 * D if opted_out else arrived, registered_by_id=self.nurse_id,
                  version=1, created_at=arrived, updated_at=arrived)
        self._add(Episode, id=episode_id, patient_id=patient_id, status="closed", level="transition_clinic",
                  presenting_reason=rng.choice(["overdose", "withdrawal", "other"]), arrived_at=arrived,
                  opened_at=arrived, opened_by_id=self.nurse_id, coach_id=coach_id, discharged_at=discharged,
                  closed_at=discharged + 40 * D, close_reason="engaged_in_care", naloxone_given=True,
                  moud="buprenorphine", recent_overdose=False, version=3, updated_at=discharged,
                  disposition=rng.choice(["home"] * 6 + ["against_medical_advice", "admitted", "unknown"]))
        self._add(LevelPeriod, episode_id=episode_id, level="emergency_department", started_at=arrived,
                  ended_at=discharged)
        for _ in range(3):
            self._add(Encounter, id=uuid.uuid4(), episode_id=episode_id, author_id=coach_id,
                      kind=rng.choice(["phone", "in_person", "sms", "attempt"]),
                      outcome="reached" if rng.random() < 0.5 else "no_answer",
                      occurred_at=discharged + rng.randrange(1, 24 * 20) * H, created_at=discharged)
        first = discharged + rng.randrange(24, 24 * 10) * H
        for at in (first, first + rng.randrange(7, 70) * D):
            self._add(Appointment, id=uuid.uuid4(), episode_id=episode_id, kind="transition_clinic", starts_at=at,
                      status="attended" if rng.random() < 0.6 else "missed", status_changed_at=at,
                      created_by_id=coach_id, created_at=discharged, version=2, updated_at=at)
        for to_level in ["transition_clinic"] + (["community_program"] if rng.random() < 0.5 else []):
            handoff_id, sent = uuid.uuid4(), discharged - H
            accepted = sent + rng.randrange(1, 48) * H
            arrived_at = accepted + rng.randrange(1, 20) * D if rng.random() < 0.6 else None
            self._add(Handoff, id=handoff_id, episode_id=episode_id, from_level="emergency_department",
                      to_level=to_level, method=rng.choice(["warm_in_person", "warm_phone", "referral"]),
                      summary={"moud": "buprenorphine", "naloxone_given": True},
                      status="completed" if arrived_at else "accepted", accept_by=sent + 24 * H,
                      arrive_by=sent + 72 * H, arrived_at=arrived_at, created_by_id=self.nurse_id, created_at=sent,
                      version=2, updated_at=accepted)
            events = [("sent", sent), ("accepted", accepted)] + ([("completed", arrived_at)] if arrived_at else [])
            for seq, (status, at) in enumerate(events, start=1):
                self._add(HandoffEvent, id=uuid.uuid4(), handoff_id=handoff_id, seq=seq, status=status, at=at,
                          by_id=self.nurse_id, note=None, kind="transition")
        self._continuity(episode_id, arrived, discharged)
        self._add(HospitalVisit, id=uuid.uuid4(), patient_id=patient_id, episode_id=episode_id, visit_number=f"V{n}",
                  setting="emergency_department", registered_at=arrived, discharged_at=discharged,
                  disposition="home", overdose=False, back_in_ed=False, task_id=None, created_at=arrived)
        if rng.random() < 0.25:
            back = discharged + rng.randrange(1, 24 * 120) * H
            self._add(HospitalVisit, id=uuid.uuid4(), patient_id=patient_id, episode_id=episode_id,
                      visit_number=f"R{n}", setting="emergency_department", registered_at=back, discharged_at=None,
                      disposition=None, overdose=rng.random() < 0.4, back_in_ed=True, task_id=None, created_at=back)
        for day in (1, 3, 7, 14, 30):
            at = discharged + day * D
            self._add(Message, id=uuid.uuid4(), patient_id=patient_id, episode_id=episode_id, direction="outbound",
                      kind="check_in", body="Hi, checking in. How are you doing?", phone="+16175550100",
                      status=rng.choice(["delivered"] * 8 + ["undelivered", "failed"]), send_at=at, sent_at=at,
                      status_at=at, attempts=1, created_at=at, updated_at=at)

    def _continuity(self, episode_id: uuid.UUID, arrived: dt.datetime, discharged: dt.datetime) -> None:
        """A kit (most patients, trained mostly), and a 7-day ED bridge then a dispensed supply (70%)."""
        rng = self.rng
        if rng.random() < 0.7:
            self._add(NaloxoneEvent, id=uuid.uuid4(), episode_id=episode_id, kind="given", occurred_at=arrived + H,
                      recipient=rng.choice(["patient"] * 4 + ["support_person"]), product="nasal_4mg", doses=2,
                      training_given=rng.random() < 0.8, setting="emergency_department",
                      recorded_by_id=self.nurse_id, created_at=arrived + H)
        if rng.random() < 0.7:
            started = discharged.astimezone(ZONE).date()
            for kind, source, start, days in (("bridge_prescription", "emergency_department", started, 7),
                                              ("dispensed", "transition_clinic", started + rng.randrange(5, 14) * D,
                                               28)):
                covered = start + (days - 1) * D
                self._add(MedicationSupply, id=uuid.uuid4(), episode_id=episode_id, medication="buprenorphine",
                          form=None, kind=kind, source=source, started_on=start, days_supplied=days,
                          covered_until=covered, timezone=ZONE.key,
                          starts_at=dt.datetime.combine(start, dt.time(), ZONE).astimezone(UTC),
                          ends_at=dt.datetime.combine(covered + D, dt.time(), ZONE).astimezone(UTC),
                          fill_status="unknown", fill_status_at=None, recorded_by_id=self.nurse_id,
                          created_at=discharged, updated_at=discharged)

    def _add(self, model, **row) -> None:
        self.rows.add(model, row)

    def flush(self) -> None:
        self.rows.flush()


def seed(app, rng: random.Random, scale: float) -> None:
    with app.app_context():
        nurse, coaches = make_staff(40)
        auth_service.create_user(username="bench.clinic", display_name="Clinic", role=Role.CLINIC_STAFF,
                                 password=PASSWORD)
        unit_of_work.commit()
        rows = Seed(nurse.id, [coach.id for coach in coaches], rng)
        zone = zoneinfo.ZoneInfo("America/New_York")
        start, end = (dt.datetime.combine(day, dt.time(), zone).astimezone(UTC)
                      for day in (PERIOD[0], PERIOD[1] + D))
        for _ in range(int(IN_PERIOD * scale)):
            rows.episode(start + dt.timedelta(seconds=rng.randrange(int((end - start).total_seconds()))))
        for _ in range(int(BEFORE * scale)):
            rows.episode(start - dt.timedelta(seconds=rng.randrange(1, 60 * 86_400)))
        rows.flush()
        analyze()
        print("seeded", json.dumps({model.__tablename__: db.session.scalar(
            sa.select(sa.func.count()).select_from(model)) for model in (Episode, Encounter, Appointment, Message)}),
            flush=True)


def recount(app) -> float:
    """Seconds to count every episode's facts afresh."""
    with app.app_context():
        started = time.perf_counter()
        refresh.refresh(full=True, unlimited=True)
        unit_of_work.commit()
        seconds = time.perf_counter() - started
        analyze()
    return round(seconds, 1)


def write_to(app, episodes: int, rng: random.Random) -> None:
    """A reached encounter on `episodes` episodes of the period, and a text of each delivered."""
    with app.app_context():
        start = dt.datetime.combine(PERIOD[0], dt.time(), UTC)
        chosen = db.session.execute(sa.select(Episode.id, Episode.coach_id, Episode.discharged_at)
                                    .where(Episode.discharged_at >= start)
                                    .order_by(sa.func.random()).limit(episodes)).all()
        rows = Rows(Encounter)
        for episode_id, coach_id, discharged in chosen:
            rows.add(Encounter, {"id": uuid.uuid4(), "episode_id": episode_id, "author_id": coach_id,
                                 "kind": "phone", "outcome": "reached",
                                 "occurred_at": discharged + rng.randrange(1, 48) * H, "created_at": discharged})
        rows.flush()
        texts = (sa.select(Message.id).where(Message.episode_id.in_([row.id for row in chosen]))
                 .limit(episodes).scalar_subquery())
        db.session.execute(sa.update(Message).where(Message.id.in_(texts)).values(status="delivered"))
        unit_of_work.commit()


def measure(app, *, repeats: int, rng: random.Random) -> dict:
    client = app.test_client()
    with app.app_context():
        engine = db.engine

    def sign_in() -> dict:
        """A fresh device session: it is not due for its touch (2 statements more) for a while."""
        token = client.post("/api/v1/auth/tokens", json={"username": "bench.clinic", "password": PASSWORD,
                                                         "device_name": "bench"}).get_json()["token"]
        return {"Authorization": f"Bearer {token}"}

    def report(query: dict, headers: dict) -> dict:
        response = client.get("/api/v1/reports/outcomes", headers=headers, query_string=query)
        assert response.status_code == 200, response.data[:300]
        return response.get_json()

    def timed(query: dict, headers: dict, before=lambda: None) -> tuple[float, dict]:
        before()
        started = time.perf_counter()
        body = report(query, headers)
        return (time.perf_counter() - started) * 1000, body

    statements = Statements()
    results = {"full_recount_seconds": recount(app)}
    half_year = {"from": PERIOD[0].isoformat(), "to": PERIOD[1].isoformat()}
    for name, query in {"half_year": half_year, "one_day": {"from": "2026-03-02", "to": "2026-03-02"}}.items():
        headers = sign_in()
        statements.count = 0
        sa.event.listen(engine, "before_cursor_execute", statements)
        report(query, headers)  # also warms the caches
        sa.event.remove(engine, "before_cursor_execute", statements)
        runs = [timed(query, headers) for _ in range(repeats)]
        results[name] = {"episodes": runs[-1][1]["cohort"]["episodes"], **_summary([ms for ms, _ in runs]),
                         "statements": statements.count}
    headers = sign_in()
    runs = [timed(half_year, headers, before=lambda: write_to(app, 600, rng)) for _ in range(repeats)]
    results["half_year_after_600_episodes_written"] = _summary([ms for ms, _ in runs])
    return results


def _summary(timings: list[float]) -> dict:
    return {"median_ms": round(statistics.median(timings)), "max_ms": round(max(timings))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the 60,000 and 10,000 episodes")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    app = migrated_app(args.database_url, "bench-outcomes.db")
    started = time.perf_counter()
    seed(app, random.Random(11), args.scale)
    print("seed_seconds", round(time.perf_counter() - started, 1), flush=True)
    results = {"database": "postgresql" if args.database_url else "sqlite",
               **measure(app, repeats=args.repeats, rng=random.Random(12))}
    print(json.dumps(results, indent=1))
    print("targets: the half year's report (60,000 episodes) < 2 s, also after writes; statements equal for the "
          "half year and one day")


if __name__ == "__main__":
    main()
