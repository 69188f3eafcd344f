"""Benchmark: `GET /api/v1/caseload` over HTTP, Bridgeline against a bare Flask app.

Seeds the caseload benchmark's data set (`benchmarks/caseload.py`: 60,000 episodes, a coach
with 60 open ones), then, for 1, 2 and 4 workers:

- starts Bridgeline as the Procfile does (`web`: gunicorn with its config and worker class,
  `WEB_CONCURRENCY` workers; and `clock`, whose sequencer seals the audit events meanwhile);
- starts a bare Flask app under gunicorn with as many sync workers, serving the same caseload
  (the body Bridgeline answered, `jsonify`-ed per request);
- drives both with the same load in alternating rounds (wrk when installed, else a bounded
  Python driver: `--connections` keep-alive connections, each one request at a time), and
  prints each round, then the medians: requests a second, p50, p99 and the ratio;
- on Linux, also where the CPU went: each round's CPU time of the app's workers, of the clock
  and of the local PostgreSQL server's processes, divided by the requests served.

    .venv/bin/python benchmarks/http_caseload.py                                   # SQLite in a temp dir
    .venv/bin/python benchmarks/http_caseload.py --database-url postgresql+psycopg://…/empty_db
    .venv/bin/python benchmarks/http_caseload.py --scale 0.1 --workers 2 --rounds 3 --seconds 5

The PostgreSQL database must be empty (the benchmark migrates and fills a new one beside it);
`--seeded URL` reuses a database an earlier run seeded (it prints its URL).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.caseload import _fresh_postgres, seed  # noqa: E402

BARE_APP = '''
import json, os
from flask import Flask, jsonify

app = Flask(__name__)
with open(os.environ["BARE_CASELOAD"], encoding="utf-8") as f:
    CASELOAD = json.load(f)


@app.get("/api/v1/caseload")
def caseload():
    return jsonify(CASELOAD)
'''
PATH = "/api/v1/caseload"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def procfile(name: str) -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return line.split(":", 1)[1].strip()
    raise KeyError(name)


@contextlib.contextmanager
def started(command: list[str], env: dict, cwd: Path, port: int):
    """A process group, once http://127.0.0.1:port answers; stopped (SIGTERM) afterwards."""
    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        if port:
            deadline = time.monotonic() + 60
            while not _answers(port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:3]} did not start")
                time.sleep(0.2)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/health")
        connection.getresponse().read()
        return True
    except OSError:
        return False


def environment(database_url: str, workers: int) -> dict:
    venv_bin = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
            "DATABASE_URL": database_url, "WEB_CONCURRENCY": str(workers), "BIND_ADDRESS": "127.0.0.1",
            "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST_KIB": "64"}


def request_json(port: int, method: str, path: str, body: dict | None = None, token: str | None = None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    connection.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read() or b"null")


# --- load ----------------------------------------------------------------------------------


def drive(port: int, token: str | None, *, seconds: float, connections: int) -> dict:
    if shutil.which("wrk"):
        return _wrk(port, token, seconds=seconds, connections=connections)
    return _python_driver(port, token, seconds=seconds, connections=connections)


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _wrk(port: int, token: str | None, *, seconds: float, connections: int) -> dict:
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{int(seconds)}s", "--latency",
               "--timeout", "10s"]
    if token:
        command += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(command + [f"http://127.0.0.1:{port}{PATH}"], capture_output=True, text=True,
                         check=True).stdout
    percentiles = {int(p): float(v) * _UNITS[u] for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$",
                                                                          out, re.M)}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "p50_ms": percentiles[50],
            "p99_ms": percentiles[99], "errors": (int(bad.group(1)) if bad else 0)
            + (sum(map(int, errors.groups())) if errors else 0)}


def _python_driver(port: int, token: str | None, *, seconds: float, connections: int) -> dict:
    """`connections` threads, each a keep-alive connection sending one request at a time."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    stop_at = time.monotonic() + seconds

    def run(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop_at:
            began = time.perf_counter()
            try:
                connection.request("GET", PATH, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors[i] += 1
            except OSError:
                errors[i] += 1
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            latencies[i].append((time.perf_counter() - began) * 1000)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(connections)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - began
    every = sorted(x for per in latencies for x in per)
    return {"rps": len(every) / took, "p50_ms": statistics.median(every),
            "p99_ms": every[min(len(every) - 1, int(len(every) * 0.99))], "errors": sum(errors)}


# --- where the CPU goes ---------------------------------------------------------------------


def _cpu_seconds(*, group: int | None = None, command: str | None = None) -> float:
    """User and system CPU time of the live processes of a process group, or of those whose
    command is `command` (the local PostgreSQL server's), from /proc (0 elsewhere)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        name, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if (group is not None and int(fields[2]) == group) or (command is not None and name == command):
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _cpu(groups: dict[str, int]) -> dict[str, float]:
    return {name: _cpu_seconds(group=group) for name, group in groups.items()} | {
        "database": _cpu_seconds(command="postgres")}


# --- the comparison ------------------------------------------------------------------------


def prepare(database_url: str | None, scale: float, seeded: str | None) -> str:
    if seeded:
        return seeded
    if database_url:
        url = _fresh_postgres(database_url, "http")
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench-http.db"
    os.environ.update({"DATABASE_URL": url, "ARGON2_TIME_COST": "1", "ARGON2_MEMORY_COST_KIB": "64",
                       "LOG_LEVEL": "WARNING"})
    from flask_migrate import upgrade

    from backend import create_app
    from backend.config import Config

    app = create_app(Config())
    with app.app_context():
        upgrade()
    started_at = time.perf_counter()
    seed(app, patients=max(200, int(50_000 * scale)), episodes=max(240, int(60_000 * scale)),
         encounters=max(2_400, int(600_000 * scale)), rng=random.Random(7))
    print(json.dumps({"seeded": url, "seconds": round(time.perf_counter() - started_at, 1)}), flush=True)
    return url


def compare(url: str, *, workers: int, rounds: int, seconds: float, connections: int, work: Path) -> dict:
    env = environment(url, workers)
    web_port, bare_port = free_port(), free_port()
    web = ["bash", "-c", procfile("web")]
    clock = ["bash", "-c", procfile("clock")]
    bare = [str(Path(sys.executable).parent / "gunicorn"), "--workers", str(workers), "--bind",
            f"127.0.0.1:{bare_port}", "--log-level", "warning", "bare:app"]
    with started(web, {**env, "PORT": str(web_port)}, ROOT, web_port) as web_proc, \
            started(clock, env, ROOT, 0) as clock_proc:
        status, answer = request_json(web_port, "POST", "/api/v1/auth/tokens",
                                      {"username": "bench.coach0", "password": "benchmark passphrase"})
        assert status == 201, answer
        token = answer["token"]
        status, caseload = request_json(web_port, "GET", PATH, token=token)
        assert status == 200 and len(caseload["items"]) == 60, status
        (work / "caseload.json").write_text(json.dumps(caseload))
        with started(bare, {**env, "BARE_CASELOAD": str(work / "caseload.json")}, work, 0) as bare_proc:
            deadline = time.monotonic() + 30
            while not _bare_answers(bare_port):
                if time.monotonic() > deadline:
                    raise RuntimeError("the bare app did not start")
                time.sleep(0.2)
            apps = {"bridgeline": (web_port, token), "bare": (bare_port, None)}
            groups = {"bridgeline": {"workers": web_proc.pid, "clock": clock_proc.pid},
                      "bare": {"workers": bare_proc.pid}}
            for port, tok in apps.values():  # warm up
                drive(port, tok, seconds=2, connections=connections)
            runs: dict[str, list[dict]] = {"bridgeline": [], "bare": []}
            for n in range(rounds):
                for name in (("bare", "bridgeline") if n % 2 == 0 else ("bridgeline", "bare")):
                    port, tok = apps[name]
                    before = _cpu(groups[name])
                    result = drive(port, tok, seconds=seconds, connections=connections)
                    served = max(1.0, result["rps"] * seconds)
                    result |= {f"cpu_ms_{part}": (used - before[part]) * 1000 / served
                               for part, used in _cpu(groups[name]).items()}
                    runs[name].append(result)
                    print(json.dumps({"workers": workers, "round": n + 1, "app": name,
                                      **{k: round(v, 2) for k, v in result.items()}}), flush=True)
    medians = {name: {key: round(statistics.median(r[key] for r in results), 2)
                      for key in results[0] if key != "errors"} | {"errors": sum(r["errors"] for r in results)}
               for name, results in runs.items()}
    return {"workers": workers, **medians,
            "ratio": round(medians["bridgeline"]["rps"] / medians["bare"]["rps"], 4)}


def _bare_answers(port: int) -> bool:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", PATH)
        return connection.getresponse().status == 200
    except OSError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="an EMPTY PostgreSQL database (default: SQLite in a temp dir)")
    parser.add_argument("--seeded", help="a database an earlier run seeded (skips seeding)")
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (default 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per worker count (default 3)")
    parser.add_argument("--seconds", type=int, default=8, help="length of each round (default 8)")
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()
    url = prepare(args.database_url, args.scale, args.seeded)
    driver = "wrk" if shutil.which("wrk") else "python"
    summary = []
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "bare.py").write_text(BARE_APP)
        for workers in args.workers:
            summary.append(compare(url, workers=workers, rounds=args.rounds, seconds=args.seconds,
                                   connections=args.connections, work=Path(work)))
            print(json.dumps({"median": summary[-1]}), flush=True)
    database = "postgresql" if url.startswith("postgresql") else "sqlite"
    print(f"\n{database}, {args.connections} connections, {driver}, medians of {args.rounds} alternating rounds")
    print("| workers | Bridgeline: req/s, p50, p99 | bare Flask: req/s, p50, p99 | ratio "
          "| CPU per request: Bridgeline's workers, clock, PostgreSQL; the bare app's workers |")
    print("| --- | --- | --- | --- | --- |")
    for row in summary:
        b, f = row["bridgeline"], row["bare"]
        print(f"| {row['workers']} | {b['rps']:.0f}, {b['p50_ms']:.1f} ms, {b['p99_ms']:.1f} ms "
              f"| {f['rps']:.0f}, {f['p50_ms']:.1f} ms, {f['p99_ms']:.1f} ms | 1/{1 / row['ratio']:.0f} "
              f"| {b['cpu_ms_workers']:.2f}, {b['cpu_ms_clock']:.2f}, {b['cpu_ms_database']:.2f} ms; "
              f"{f['cpu_ms_workers']:.2f} ms |")


if __name__ == "__main__":
    main()
