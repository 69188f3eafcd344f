"""Benchmark: what metrics cost — per request (the latency histogram) and per scrape of `/metrics`.

1. In process, 2,000 `GET /health` (the cheapest request, so the share is largest) with the
   request histogram and with it replaced by a no-op, alternating in rounds; and the bare
   `observe_request` call.
2. A database with a history of texts (`--messages`, default 1,000,000, most delivered; 10,000
   queued and due, 2,000 failed, 500 unknown, 500 blocked), request series for every route
   without parameters, then 50 scrapes: total time, the database's share, the series and bytes.

    .venv/bin/python benchmarks/metrics.py                       # SQLite in a temporary file
    .venv/bin/python benchmarks/metrics.py --multiprocess        # as under gunicorn (files)
    .venv/bin/python benchmarks/metrics.py --database-url postgresql+psycopg://…/empty_db

The PostgreSQL database must be empty: the benchmark migrates it and fills it.
"""

from __future__ import annotations

import argparse
import atexit
import datetime as dt
import ipaddress
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid

if "--multiprocess" in sys.argv:  # before prometheus-client is imported, as gunicorn.conf.py does
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bench-metrics-")
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], True)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from backend import metrics  # noqa: E402
from backend.outreach.models import (  # noqa: E402
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from benchmarks.common import Rows, analyze, migrated_app  # noqa: E402

REQUESTS = 2_000
#: Each mode's 2,000 requests run as rounds of 200, alternating, so that the machine's other
#: load falls on both alike; CPU time of this process, not the wall clock, for the same reason.
ROUNDS = 20


def time_requests(client, n: int) -> float:
    started = time.process_time()
    for _ in range(n):
        client.get("/health")
    return (time.process_time() - started) / n


def request_cost(app) -> None:
    client = app.test_client()
    time_requests(client, 200)  # warm up
    measured, observe = {"with": [], "without": []}, metrics.observe_request
    for round_ in range(ROUNDS):
        for mode in ("with", "without") if round_ % 2 else ("without", "with"):
            metrics.observe_request = observe if mode == "with" else (lambda *args: None)
            measured[mode].append(time_requests(client, REQUESTS // ROUNDS))
    metrics.observe_request = observe
    # Medians: a garbage collection or a neighbour's burst lands in one round, not in both modes.
    with_, without = (statistics.median(measured[m]) * 1000 for m in ("with", "without"))
    paired = statistics.median(a - b for a, b in zip(measured["with"], measured["without"], strict=True)) * 1e6
    print(f"GET /health, {REQUESTS:,} requests each way, CPU time: median {with_:.3f} ms a request with the "
          f"histogram, {without:.3f} ms without; median difference of {ROUNDS} paired rounds {paired:+.1f} µs")
    started = time.perf_counter()
    for _ in range(100_000):
        metrics.observe_request("/api/v1/episodes/<uuid:episode_id>", "GET", 200, 0.012)
    print(f"observe_request alone: {(time.perf_counter() - started) * 10:.2f} µs a call")


def seed(app, history: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    rows = Rows(Message)
    plan = [(MessageStatus.QUEUED, 10_000), (MessageStatus.FAILED, 2_000), (MessageStatus.UNKNOWN, 500),
            (MessageStatus.BLOCKED, 500), (MessageStatus.DELIVERED, history - 13_000)]
    with app.app_context():
        for status, count in plan:
            for i in range(count):
                due = now - dt.timedelta(seconds=i) if status == MessageStatus.QUEUED else None
                rows.add(Message, {"id": uuid.uuid4(), "direction": MessageDirection.OUTBOUND,
                                   "kind": MessageKind.CHECK_IN, "body": "Checking in: how are you doing today?",
                                   "status": status, "due_at": due, "send_at": now, "status_at": now,
                                   "created_at": now, "updated_at": now})
        rows.flush()
        analyze()


def scrape_cost(app) -> None:
    app.config["METRICS_ALLOWED_NETWORKS"] = (ipaddress.ip_network("127.0.0.0/8"),)
    client = app.test_client()
    for rule in app.url_map.iter_rules():  # a series per route (401s and 404s)
        if "GET" in rule.methods and "<" not in rule.rule:
            client.get(rule.rule)
    client.get("/metrics")
    totals, database = [], []
    for _ in range(50):
        started = time.perf_counter()
        body = client.get("/metrics").text
        totals.append((time.perf_counter() - started) * 1000)
        line = next(line for line in body.splitlines() if line.startswith("bridgeline_scrape_database_seconds "))
        database.append(float(line.split()[1]) * 1000)
    series = sum(1 for line in body.splitlines() if line and not line.startswith("#"))
    p95 = statistics.quantiles(totals, n=20)[-1]
    print(f"scrape: median {statistics.median(totals):.1f} ms, p95 {p95:.1f} ms, of which the database "
          f"{statistics.median(database):.1f} ms; {series} series, {len(body.encode()):,} bytes")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--multiprocess", action="store_true")
    args = parser.parse_args()
    app = migrated_app(args.database_url, "metrics.db")
    print(f"mode: {'multiprocess (files)' if metrics.MULTIPROCESS_DIRECTORY else 'single process'}; "
          f"database: {app.config['SQLALCHEMY_DATABASE_URI'].split(':')[0]}")
    request_cost(app)
    started = time.perf_counter()
    seed(app, args.messages)
    print(f"seeded {args.messages:,} texts in {time.perf_counter() - started:.0f} s")
    scrape_cost(app)


if __name__ == "__main__":
    main()
