"""How the clock process stops (`backend.clock.run_until_stopped`): promptly on SIGTERM, whenever
it arrives, after letting running jobs finish; at once on a second signal.

Each test runs a small program in a fresh interpreter, because signals go to processes. The
schedulers in it run many short jobs, so that a signal often lands while the scheduler is
submitting one: the moment that left a handler-based shutdown hung.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PRELUDE = textwrap.dedent("""
    import datetime as dt, logging, os, random, signal, sys, time
    from backend.clock import new_scheduler, run_until_stopped

    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)  # "skipped: still running"

    def scheduler(job, seconds, jobs=1):
        scheduler = new_scheduler()
        for n in range(jobs):
            scheduler.add_job(job, "interval", seconds=seconds, id=str(n), max_instances=1, coalesce=True,
                              next_run_time=dt.datetime.now(dt.timezone.utc))
        return scheduler

    def stopped_within(pid, seconds):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return None
""")


def run(program: str) -> str:
    result = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(program)], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_clock_stops_promptly_on_sigterm_whenever_it_arrives():
    outcomes = run("""
        outcomes = []
        for _ in range(25):
            pid = os.fork()
            if pid == 0:
                received = run_until_stopped(scheduler(lambda: None, 0.002, jobs=8))
                os._exit(0 if received == signal.SIGTERM else 3)
            time.sleep(random.uniform(0.05, 0.3))
            os.kill(pid, signal.SIGTERM)
            status = stopped_within(pid, 5)
            outcomes.append("hung" if status is None else f"exit {os.waitstatus_to_exitcode(status)}")
        print(",".join(outcomes))
    """)
    assert outcomes.split(",") == ["exit 0"] * 25


def test_a_running_job_finishes_before_the_clock_stops():
    finished = run("""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            def job():
                time.sleep(0.5)
                os.write(write, b"finished")
            run_until_stopped(scheduler(job, 3600))
            os._exit(0)
        time.sleep(0.2)  # the job is running
        os.kill(pid, signal.SIGTERM)
        status = stopped_within(pid, 10)
        os.close(write)
        print(os.read(read, 100).decode(), None if status is None else os.waitstatus_to_exitcode(status))
    """)
    assert finished == "finished 0"


@pytest.mark.parametrize("second", ["SIGTERM", "SIGINT"])
def test_a_second_signal_stops_the_clock_at_once(second):
    exit_code = run(f"""
        pid = os.fork()
        if pid == 0:
            run_until_stopped(scheduler(lambda: time.sleep(60), 3600))
            os._exit(0)
        time.sleep(0.2)
        os.kill(pid, signal.SIGTERM)
        time.sleep(0.2)
        assert os.waitpid(pid, os.WNOHANG)[0] == 0, "the clock stopped before its job finished"
        os.kill(pid, signal.{second})
        status = stopped_within(pid, 5)
        print(None if status is None else os.waitstatus_to_exitcode(status))
    """)
    assert exit_code == str(-signal.Signals[second])
