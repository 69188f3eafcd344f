"""Prometheus instruments of the web process, and the exposition of everything measured.

The request cycle (`backend.web`) times each request here by route template, never by path;
`backend.errors` counts the database errors it answers 503 for. Labels take bounded values
only — a route template, a method from a fixed list, a status code, an error kind — so no
label can carry patient data or grow without limit (privacy.md). `backend.ops.scrape` serves
`/metrics` and adds the gauges it reads from the database at scrape time.

Under gunicorn each worker is its own process: prometheus-client's multiprocess mode keeps
every worker's values in files under `PROMETHEUS_MULTIPROC_DIR` (set by
`backend.gunicorn_config` before any worker starts) and a scrape, whichever worker answers it,
sums them. Outside gunicorn (tests, `flask run`) the variable is unset and the values live in
this process. The library decides which when it is first imported, from the environment: this
module only follows its choice.
"""

from __future__ import annotations

import functools
import logging
import os
import threading

import prometheus_client
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

# `*_created` series double the output and tell nothing a scrape needs (multiprocess mode has none).
prometheus_client.disable_created_metrics()

#: Methods that label requests as themselves; any other (clients may send any token) is `other`.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: The route label of a request that matched no route (its path is the client's to choose).
UNMATCHED = "unmatched"
#: Up to gunicorn's 30 s worker timeout; the API's targets sit between 10 and 100 ms.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_SECONDS = Histogram(
    "bridgeline_http_request_duration_seconds",
    "Time from the first before-request hook to the response, by route template, method and status.",
    ["route", "method", "status"], buckets=LATENCY_BUCKETS)
DATABASE_ERRORS = Counter(
    "bridgeline_database_errors",
    "Requests answered 503 because of the database: `unavailable` (down, unreachable, full, read-only, too "
    "slow) or `busy` (a deadlock, serialization failure, lock timeout or SQLite's lock).",
    ["kind"])
DATABASE_ERROR_KINDS = ("unavailable", "busy")
HL7_MESSAGES = Counter(
    "bridgeline_hl7_messages",
    "HL7 v2 messages from the hospital's interface engine, by MSH-9 type and what they did: `processed`, "
    "`unknown_patient`, `duplicate`, `discharge_differs`, `ignored`, `error` (AE), `rejected` (AR), `resent` "
    "(a control id already received: the stored ACK again).",
    ["type", "outcome"])

#: Where the workers' values are (read when the library was imported, as the library did).
MULTIPROCESS_DIRECTORY = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _never_fails(record):
    """Measuring never fails the work measured: in multiprocess mode each value lives in a file,
    and a full disk (or a lost directory) must cost the metric, not the request."""

    @functools.wraps(record)
    def safely(*args, **kwargs) -> None:
        try:
            record(*args, **kwargs)
        except Exception as exc:
            if not _failed.is_set():  # said once per process, not per request
                _failed.set()
                log.error("metrics could not be recorded; requests go on without them",
                          extra={"exc_type": type(exc).__name__})

    return safely


_failed = threading.Event()


@_never_fails
def observe_request(route: str | None, method: str, status: int, seconds: float | None) -> None:
    """Record one answered request; `route` is the matched rule's template (None: unmatched)."""
    if seconds is None:
        return
    REQUEST_SECONDS.labels(route or UNMATCHED, method if method in METHODS else "other", str(status)).observe(seconds)


@_never_fails
def count_database_error(kind: str | None) -> None:
    """Count a database error of `kind` (`unavailable` or `busy`); None counts nothing."""
    if kind in DATABASE_ERROR_KINDS:
        DATABASE_ERRORS.labels(kind).inc()


@_never_fails
def count_hl7_message(message_type: str, outcome) -> None:
    """Count one message of the ADT feed (its type is cut to the event, e.g. `ADT^A04`)."""
    HL7_MESSAGES.labels("^".join(str(message_type).split("^")[:2])[:20] or "unknown", str(outcome)).inc()


class _ThisProcess:
    """The values this process holds (the default registry: ours plus the process and Python
    collectors), for a registry built per scrape."""

    def collect(self):
        return REGISTRY.collect()


def exposition(*collectors) -> tuple[bytes, str]:
    """Everything measured, in the text format, with `collectors` computed now; and its
    content type."""
    for kind in DATABASE_ERROR_KINDS:  # a kind never counted reads 0, not absent
        DATABASE_ERRORS.labels(kind)
    registry = CollectorRegistry(auto_describe=False)
    if MULTIPROCESS_DIRECTORY:
        MultiProcessCollector(registry, path=MULTIPROCESS_DIRECTORY)
    else:
        registry.register(_ThisProcess())
    for collector in collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
