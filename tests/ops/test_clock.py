"""How the clock process stops (`backend.clock.run_until_stopped`): promptly on SIGTERM, whenever
it arrives, after letting running jobs finish; at once on a second signal.

Each test runs a small program in a fresh interpreter, because signals go to processes. The
schedulers in it run many short jobs, so that a signal often lands while the scheduler is
submitting one: the moment that left a handler-based shutdown hung. The program blocks the stop
signals before it forks, as the clock would on its first line, so that no signal can arrive
before the child is ready for it; children report through pipes when they are where a test
needs them, so that nothing depends on how fast a loaded machine runs them.
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
    import datetime as dt, logging, os, random, select, signal, sys, time
    from backend.clock import STOP_SIGNALS, new_scheduler, run_until_stopped

    logging.getLogger("apscheduler").setLevel(logging.CRITICAL)  # "skipped: still running"
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def scheduler(job, seconds, jobs=1):
        scheduler = new_scheduler()
        for n in range(jobs):
            scheduler.add_job(job, "interval", seconds=seconds, id=str(n), max_instances=1, coalesce=True,
                              next_run_time=dt.datetime.now(dt.timezone.utc))
        return scheduler

    def told(read, word, seconds=30):
        assert select.select([read], [], [], seconds)[0], f"the child never said {word!r}"
        assert os.read(read, len(word)) == word

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

    def exit_code(status):
        return None if status is None else os.waitstatus_to_exitcode(status)
""")


def run(program: str) -> str:
    result = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(program)], cwd=ROOT,
                            capture_output=True, text=True, timeout=180)
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
            outcomes.append(str(exit_code(stopped_within(pid, 10))))
        print(",".join(outcomes))
    """)
    assert outcomes.split(",") == ["0"] * 25


def test_a_running_job_finishes_before_the_clock_stops():
    finished = run("""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            def job():
                os.write(write, b"started")
                time.sleep(0.5)
                os.write(write, b"finished")
            run_until_stopped(scheduler(job, 3600))
            os._exit(0)
        told(read, b"started")
        os.kill(pid, signal.SIGTERM)
        status = stopped_within(pid, 30)
        os.close(write)
        print(os.read(read, 100).decode(), exit_code(status))
    """)
    assert finished == "finished 0"


@pytest.mark.parametrize("second", ["SIGTERM", "SIGINT"])
def test_a_second_signal_stops_the_clock_at_once(second):
    exit_code = run(f"""
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            def job():
                os.write(write, b"started")
                time.sleep(60)
            clock = scheduler(job, 3600)
            shutdown = clock.shutdown
            def stopping(wait):
                os.write(write, b"stopping")  # the first signal is taken; waiting for the job
                shutdown(wait)
            clock.shutdown = stopping
            run_until_stopped(clock)
            os._exit(0)
        told(read, b"started")
        os.kill(pid, signal.SIGTERM)
        told(read, b"stopping")
        assert os.waitpid(pid, os.WNOHANG)[0] == 0, "the clock stopped before its job finished"
        os.kill(pid, signal.{second})
        print(exit_code(stopped_within(pid, 10)))
    """)
    assert exit_code == str(-signal.Signals[second])
