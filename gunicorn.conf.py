"""gunicorn's settings for the Procfile's `web` (`--config gunicorn.conf.py`; the command line's
flags win over anything here).

- **Metrics across workers.** Each worker is its own process; prometheus-client's multiprocess
  mode keeps each worker's values in files under `PROMETHEUS_MULTIPROC_DIR`, and a scrape sums
  them. The library reads the variable when it is first imported, so it is set here, before
  anything imports it and before any worker forks: an empty temporary directory when the
  variable is unset (removed when gunicorn exits), else the directory named, emptied of an
  earlier run's files at start. A worker that exits leaves its counts behind, as counters must.
- **Logs.** gunicorn's own log (start, workers booting, exiting, timing out) is written as the
  app's JSON lines; gunicorn's access log is off, since the app logs each request itself, by
  route template and without the query string (`backend.http_server.Logger`).
"""

import glob
import os
import shutil
import tempfile

_made_directory = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_directory = tempfile.mkdtemp(prefix="bridgeline-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_directory

logger_class = "backend.http_server.Logger"


def on_starting(server):
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for stale in glob.glob(os.path.join(directory, "*.db")):
        os.remove(stale)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_directory:
        shutil.rmtree(_made_directory, ignore_errors=True)
