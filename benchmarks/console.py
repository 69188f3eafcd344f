"""Benchmark: the staff console's busiest pages, in process, at the caseload benchmark's scale.

Seeds a fresh database as `benchmarks/caseload.py` does (60,000 episodes at full scale) plus
open handoffs to the transition clinic, signs in to the console as clinic staff, and for the
review dashboard, the handoff queue, an episode page and the outcomes page prints the server
time (median, p95; and the median CPU time of this process, which on SQLite includes the
database's work and is what a busy, shared machine disturbs least), the SQL statements per
page (the same at both scales when the page is bounded) and the weight (the HTML, and what
goes over the wire: the page as the app gzips it plus the stylesheet gzipped). Sign-in excluded.

    .venv/bin/python benchmarks/console.py                       # SQLite in a temporary file
    .venv/bin/python benchmarks/console.py --database-url postgresql+psycopg://…/empty_db
    .venv/bin/python benchmarks/console.py --scale 0.1           # quicker, smaller
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import sqlalchemy as sa  # noqa: E402
from flask_migrate import upgrade  # noqa: E402

from backend import create_app, unit_of_work  # noqa: E402
from backend.auth import service as auth_service  # noqa: E402
from backend.auth.models import Role  # noqa: E402
from backend.cases.models import Episode  # noqa: E402
from backend.config import Config  # noqa: E402
from backend.extensions import db  # noqa: E402
from benchmarks.caseload import _fresh_postgres  # noqa: E402
from benchmarks.caseload import seed as seed_caseloads  # noqa: E402
from benchmarks.common import PASSWORD, Statements  # noqa: E402

HANDOFFS = 150
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed(app, *, scale: float) -> None:
    sizes = {"patients": max(200, int(50_000 * scale)), "episodes": max(240, int(60_000 * scale)),
             "encounters": max(2_400, int(600_000 * scale))}
    seed_caseloads(app, rng=random.Random(7), **sizes)
    with app.app_context():
        auth_service.create_user(username="bench.clinic", display_name="Clinic", role=Role.CLINIC_STAFF,
                                 password=PASSWORD)
        unit_of_work.commit()
        episode_ids = db.session.scalars(sa.select(Episode.id).where(Episode.status == "open")
                                         .order_by(Episode.id).limit(HANDOFFS)).all()
    api = app.test_client()
    token = api.post("/api/v1/auth/tokens", json={"username": "bench.nurse", "password": PASSWORD,
                                                  "device_name": "bench"}).get_json()["token"]
    for episode_id in episode_ids:
        response = api.post("/api/v1/handoffs", headers={"Authorization": f"Bearer {token}"}, json={
            "episode_id": str(episode_id), "to_level": "transition_clinic", "method": "warm_phone",
            "summary": {"moud": "buprenorphine", "naloxone_given": True}})
        assert response.status_code == 201, response.get_json()


def measure(app, *, requests: int) -> dict:
    browser = app.test_client()
    page = browser.get("/console/sign-in").get_data(as_text=True)
    browser.post("/console/sign-in", data={"username": "bench.clinic", "password": PASSWORD,
                                           "csrf_token": _CSRF.search(page).group(1)})
    with app.app_context():
        episode_id = db.session.scalar(sa.select(Episode.id).where(Episode.status == "open").order_by(Episode.id))
    css = browser.get("/console/static/console.css").get_data()
    pages = {"review": "/console/review", "handoffs": "/console/handoffs",
             "episode": f"/console/episodes/{episode_id}", "outcomes": "/console/reports/outcomes"}
    counter = Statements()
    with app.app_context():
        engine = db.engine
    results = {}
    for name, path in pages.items():
        for _ in range(5):  # warm caches and the pool
            assert browser.get(path).status_code == 200, path
        counter.count = 0
        sa.event.listen(engine, "before_cursor_execute", counter)
        html = browser.get(path).get_data()
        sa.event.remove(engine, "before_cursor_execute", counter)
        sent = browser.get(path, headers={"Accept-Encoding": "gzip"})
        assert sent.headers.get("Content-Encoding") == "gzip", path
        statements = counter.count
        timings, cpu = [], []
        for _ in range(requests):
            started, started_cpu = time.perf_counter(), time.process_time()
            assert browser.get(path).status_code == 200
            timings.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        timings.sort()
        results[name] = {"median_ms": round(statistics.median(timings), 1),
                         "p95_ms": round(timings[int(len(timings) * 0.95)], 1),
                         "median_cpu_ms": round(statistics.median(cpu), 1), "statements": statements,
                         "html_kb": round(len(html) / 1024, 1),
                         "sent_kb_with_css": round((len(sent.get_data()) + len(gzip.compress(css))) / 1024, 1)}
    return results


def run(database_url: str, *, scale: float, requests: int) -> dict:
    os.environ.update({"DATABASE_URL": database_url, "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST_KIB": "64",
                       "LOG_LEVEL": "WARNING"})
    app = create_app(Config())
    with app.app_context():
        upgrade()
    started = time.perf_counter()
    seed(app, scale=scale)
    seeded = round(time.perf_counter() - started, 1)
    return {"episodes": max(240, int(60_000 * scale)), "seed_seconds": seeded, **measure(app, requests=requests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1)")
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    for label, factor in (("small", args.scale / 100), ("full", args.scale)):
        url = _fresh_postgres(args.database_url, label) if args.database_url \
            else f"sqlite:///{tempfile.mkdtemp()}/bench-console-{label}.db"
        print(label, json.dumps(run(url, scale=factor, requests=args.requests)), flush=True)
    print("measured", dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))


if __name__ == "__main__":
    main()
