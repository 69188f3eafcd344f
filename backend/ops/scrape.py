"""`GET /metrics`: the Prometheus scrape (text exposition format), for the monitoring system only.

Who may read it: a client whose address is in `METRICS_ALLOWED_NETWORKS` — the direct peer and,
behind `TRUSTED_PROXY_COUNT` proxies, the client they report too, so that neither a proxy on an
allowed address nor a forged `X-Forwarded-For` lets an outsider through — or a request carrying
`Authorization: Bearer <METRICS_TOKEN>`. Everyone else gets the 404 of a path that does not
exist, whatever the method: the endpoint does not advertise itself. No session, no audit event:
nothing here is patient data.

It is not in the phone app's contract (`mobile_api_spec/`), unlike `/health` and `/ready`: no
app calls it, it answers nobody but the operations network, and its body is Prometheus's text
format, not JSON. So it is a plain Flask blueprint, as the Twilio webhooks are.

Besides what the workers measured (`backend.metrics`), a scrape reads a few gauges from the
database: texts by status, the age of the oldest due text, and how long ago each clock job last
finished. Two small statements, each served by a partial index, in a read-only snapshot with a
time limit; when the database cannot answer in time those gauges are left out and
`bridgeline_database_up` is 0, so the scrape itself still answers within about two seconds.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import ipaddress
import logging
import os
import threading
import time
import weakref

import sqlalchemy as sa
from flask import Blueprint, Response, current_app, request
from prometheus_client.core import GaugeMetricFamily
from werkzeug.exceptions import NotFound

from backend import metrics
from backend.audit import outbox
from backend.auth.access import public
from backend.database import UTCDateTime, utcnow
from backend.extensions import db
from backend.outreach.models import NEEDS_REVIEW, REVIEW_STATUSES, MessageStatus

log = logging.getLogger(__name__)

blp = Blueprint("metrics", __name__)

#: How long a scrape waits for the database before leaving its gauges out.
DATABASE_SECONDS = 1.5
#: Every method a client might try gets the same 404 (no 405 naming the methods that exist).
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
#: Texts counted at each scrape: those the dispatcher or a person still has to deal with. The
#: other statuses (sent, delivered…) grow with history: counting them would scan it every time.
COUNTED_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING, *REVIEW_STATUSES)


@blp.route("/metrics", methods=_METHODS, provide_automatic_options=False)
@public
def scrape():
    if request.method not in ("GET", "HEAD") or not may_scrape():
        raise NotFound()  # answered exactly as a path that does not exist
    body, content_type = metrics.exposition(DatabaseGauges(db.engine, outbox.engine()))
    return Response(body, content_type=content_type)


def may_scrape() -> bool:
    config = current_app.config
    token = config["METRICS_TOKEN"]
    if token:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Digests of equal length: the comparison takes the same time whatever was sent.
        if scheme.lower() == "bearer" and hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(),
                                                              hashlib.sha256(token.encode()).digest()):
            return True
    networks = config["METRICS_ALLOWED_NETWORKS"]
    return bool(networks) and all(_within(address, networks) for address in client_addresses())


def client_addresses() -> set[str]:
    """The direct peer's address and, when ProxyFix took the client's from X-Forwarded-For,
    that one as well."""
    original = request.environ.get("werkzeug.proxy_fix.orig")
    addresses = {request.environ.get("REMOTE_ADDR") or ""}
    if original is not None:
        addresses.add(original.get("REMOTE_ADDR") or "")
    return addresses


def _within(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip  # an IPv4 client of a dual-stack socket
    return any(ip in network for network in networks)


class DatabaseGauges:
    """A collector for one scrape: the gauges the database holds, read now."""

    def __init__(self, engine: sa.Engine, outbox_engine: sa.Engine | None) -> None:
        self.engine = engine
        self.outbox_engine = outbox_engine

    def collect(self):
        started = time.perf_counter()
        readings = _read_within(self.engine, self.outbox_engine, DATABASE_SECONDS)
        yield GaugeMetricFamily("bridgeline_database_up", "1 when this scrape could read the database in time "
                                "(the gauges below are then present), else 0.", value=1 if readings else 0)
        yield GaugeMetricFamily("bridgeline_scrape_database_seconds", "Time this scrape spent reading the "
                                "database.", value=time.perf_counter() - started)
        if readings is None:
            return
        counts, oldest_due, beats, unsealed, now = readings
        texts = GaugeMetricFamily("bridgeline_texts", "Texts now in each status that the dispatcher or a person "
                                  "still has to deal with.", labels=["status"])
        for status in COUNTED_STATUSES:
            texts.add_metric([status.value], counts.get(status.value, 0))
        yield texts
        age = max(0.0, (now - oldest_due).total_seconds()) if oldest_due is not None else 0.0
        yield GaugeMetricFamily("bridgeline_oldest_due_text_age_seconds", "How long the longest-waiting queued "
                                "text has been due (0 when none is due): the dispatcher's lag.", value=age)
        lag = GaugeMetricFamily("bridgeline_job_last_run_age_seconds", "Seconds since each of the clock's jobs "
                                "last finished without error (`heartbeat`: the clock itself; `dispatch_texts`: "
                                "the text dispatcher).", labels=["job"])
        for job_name, last_run_at in sorted(beats):
            lag.add_metric([job_name], max(0.0, (now - last_run_at).total_seconds()))
        yield lag
        events, oldest_unsealed = unsealed
        yield GaugeMetricFamily("bridgeline_audit_unsealed_events", "Audit events written but not yet sealed "
                                "into the hash chain by the clock's sequencer.", value=events)
        yield GaugeMetricFamily("bridgeline_audit_seal_lag_seconds", "How long the oldest unsealed audit event "
                                "has waited for the sequencer (0 when none waits).",
                                value=max(0.0, (now - oldest_unsealed).total_seconds()) if oldest_unsealed else 0.0)


_QUEUED = sa.text(
    "SELECT count(*) AS texts, min(due_at) AS oldest_due FROM messages WHERE status = 'queued'"
).columns(sa.column("texts", sa.Integer), sa.column("oldest_due", UTCDateTime()))
# Each part's condition is the very condition of a partial index (SQLite uses one only then).
_OTHERS = sa.text(
    "SELECT 'sending' AS status, count(*) AS texts FROM messages WHERE status = 'sending' "
    f"UNION ALL SELECT status, count(*) FROM messages WHERE {NEEDS_REVIEW} GROUP BY status")
# The sequencer's tail, from the oldest unsealed event on (`backend.audit.service.UNSEALED`).
UNSEALED = sa.text(
    "SELECT count(*) AS events, min(occurred_at) AS oldest FROM audit_events WHERE chain_seq IS NULL "
    "AND seq >= (SELECT min(seq) FROM audit_events WHERE chain_seq IS NULL)"
).columns(sa.column("events", sa.Integer), sa.column("oldest", UTCDateTime()))
# `/ready` writes a row of its own there (its write probe), not a job of the clock's.
_BEATS = sa.text("SELECT job_name, last_run_at FROM job_heartbeats WHERE job_name <> 'readiness'").columns(
    sa.column("job_name", sa.String), sa.column("last_run_at", UTCDateTime()))


def _read(engine: sa.Engine, outbox_engine: sa.Engine | None, seconds: float):
    # SQLite's audit outbox first: an event moved into the trail meanwhile counts twice, never not at all.
    waiting = outbox.waiting(outbox_engine)
    with engine.connect() as connection:
        # A snapshot that takes no lock (SQLite transactions otherwise begin with the write lock).
        connection.execution_options(sqlite_begin="DEFERRED")
        with connection.begin():
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql(f"SET LOCAL statement_timeout = {int(seconds * 1000)}")
            texts, oldest_due = connection.execute(_QUEUED).one()
            counts = {"queued": texts, **{status: n for status, n in connection.execute(_OTHERS)}}
            beats = connection.execute(_BEATS).all()
            unsealed = waiting.plus(*connection.execute(UNSEALED).one())
    return counts, oldest_due, beats, (unsealed.count, unsealed.oldest_at), utcnow()


class _Reader:
    """The thread that reads the gauges for one engine in this process, and its latest read."""

    def __init__(self) -> None:
        self.pid = os.getpid()  # a thread does not survive a fork: each worker makes its own
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="metrics-db")
        self.pending: concurrent.futures.Future | None = None


_lock = threading.Lock()
_readers: weakref.WeakKeyDictionary[sa.Engine, _Reader] = weakref.WeakKeyDictionary()


def _read_within(engine: sa.Engine, outbox_engine: sa.Engine | None, seconds: float):
    """The readings, or None when the database failed or did not answer within `seconds`.

    The read runs on a thread of its own so that a database that does not answer (a connection
    attempt into a black hole) cannot hold the scrape; while a read from an earlier scrape is
    still running, no second one starts."""
    with _lock:
        reader = _readers.get(engine)
        if reader is None or reader.pid != os.getpid():
            reader = _readers[engine] = _Reader()
        if reader.pending is not None and not reader.pending.done():
            log.warning("metrics: the previous database read has not finished")
            return None
        reader.pending = future = reader.pool.submit(_read, engine, outbox_engine, seconds)
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        log.warning("metrics: the database did not answer in time", extra={"seconds": seconds})
    except Exception as exc:  # the message may quote data: the type only (backend.logs)
        log.warning("metrics: the database could not be read", extra={"exc_type": type(exc).__name__})
    return None
