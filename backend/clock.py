"""The clock process: APScheduler running every scheduled job, in its own process.

Started by the Procfile's `clock` entry (`flask --app backend clock`), never inside gunicorn
workers (each worker would run every job). Each run of a job is one unit of work: it commits
on success and rolls back on any error (the text dispatcher also commits each step of its pass
on its own: `backend.outreach.dispatcher`). Jobs must stay safe if a second clock runs by mistake
(row claims, unique constraints), since APScheduler cannot coordinate across processes.

SIGTERM or SIGINT stops it: jobs already running finish (each is short, and the platform
allows 30 s before SIGKILL); a second signal stops it at once. The signal is taken with
`sigwait` in the main thread, never in a handler: a handler runs between any two
bytecodes of the main thread, and one that shut the scheduler down while that thread was
submitting a job left it hung on the scheduler's own locks (about 1 stop in 5 when jobs are
due often).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable

import click
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask, current_app
from flask.cli import with_appcontext

from backend import unit_of_work, watchdog
from backend.audit import jobs as audit_jobs
from backend.auth import jobs as auth_jobs
from backend.continuity import jobs as continuity_jobs
from backend.database import utcnow
from backend.handoffs import jobs as handoffs_jobs
from backend.ops import jobs as ops_jobs
from backend.ops import service as ops_service
from backend.outreach import jobs as outreach_jobs
from backend.reports import jobs as reports_jobs
from backend.sync import jobs as sync_jobs

log = logging.getLogger(__name__)


def scheduled_jobs(config) -> list[tuple[Callable[[], None], int]]:
    """Every job with its interval in seconds; later modules add theirs here."""
    return [
        (ops_jobs.heartbeat, config["CLOCK_HEARTBEAT_SECONDS"]),
        (auth_jobs.purge_sign_in_counters, 3600),
        (ops_jobs.purge_idempotency_records, 3600),
        (audit_jobs.log_chain_head, 600),
        (audit_jobs.seal_audit_trail, config["AUDIT_SEAL_SECONDS"]),
        (handoffs_jobs.check_handoff_deadlines, config["HANDOFF_DEADLINE_CHECK_SECONDS"]),
        (continuity_jobs.check_medication_supplies, config["HANDOFF_DEADLINE_CHECK_SECONDS"]),
        (outreach_jobs.dispatch_texts, config["SMS_DISPATCH_SECONDS"]),
        (sync_jobs.purge_sync_changes, 3600),
        (reports_jobs.refresh_report_facts, 300),
    ]


def run_job(app: Flask, job: Callable[[], None]) -> None:
    """Run one job as a unit of work inside an application context."""
    dog = watchdog.of(app)
    with app.app_context(), (dog.watching() if dog else contextlib.nullcontext()):
        try:
            job()
            # Each job's last good run is on record, so /metrics shows how long ago each one (the
            # text dispatcher's too) last finished.
            ops_service.record_heartbeat(job_name=job.__name__)
            unit_of_work.commit()
        except Exception:
            unit_of_work.roll_back(None)
            log.exception("scheduled job failed", extra={"job": job.__name__})


def new_scheduler() -> BackgroundScheduler:
    """An empty scheduler of the kind `run_until_stopped` runs."""
    return BackgroundScheduler(timezone="UTC")


def build_scheduler(app: Flask) -> BackgroundScheduler:
    scheduler = new_scheduler()
    for job, seconds in scheduled_jobs(app.config):
        scheduler.add_job(run_job, "interval", seconds=seconds, args=[app, job], id=job.__name__,
                          max_instances=1, coalesce=True, next_run_time=utcnow())
    return scheduler


@click.command("clock")
@with_appcontext
def clock_command() -> None:
    """Run the scheduler until stopped (the Procfile's clock process)."""
    app = current_app._get_current_object()
    scheduler = build_scheduler(app)
    log.info("clock started", extra={"jobs": [job.id for job in scheduler.get_jobs()]})
    run_until_stopped(scheduler)
    log.info("clock stopped")


STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})


def run_until_stopped(scheduler: BackgroundScheduler) -> signal.Signals:
    """Run the scheduler's jobs until SIGTERM or SIGINT, let running jobs finish, and return the
    signal. The signals are blocked before the scheduler starts its threads (which inherit the
    mask), so only `sigwait` here receives them. Afterwards both have their default action:
    a second one ends the process at once.

    A thread started before this (a library's, say) would not have them blocked, and a signal
    delivered to it would end the process at once: hence the warning."""
    if threading.active_count() > 1:
        log.warning("threads started before the clock may end it abruptly on SIGTERM",
                    extra={"threads": [thread.name for thread in threading.enumerate()]})
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        scheduler.start()
        received = signal.Signals(signal.sigwait(STOP_SIGNALS))
    finally:
        for stop in STOP_SIGNALS:
            signal.signal(stop, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    log.info("clock stopping", extra={"signal": received.name})
    scheduler.shutdown(wait=True)
    return received
