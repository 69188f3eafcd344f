"""The web process's gunicorn worker (`backend.http_server`) answers what never reaches the app
with problem+json, and logs no URL. Its refusals over a real socket are in test_procfile.py;
this covers a request the app did not finish (a worker timeout), which no client can cause
on demand."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
from types import SimpleNamespace

from gunicorn.config import Config

from backend.http_server import Logger, Worker


def test_a_request_the_app_did_not_finish_is_a_500_problem_and_the_log_names_no_url(caplog):
    worker = Worker(age=1, ppid=os.getpid(), sockets=[], app=None, timeout=30, cfg=Config(), log=None)
    request = SimpleNamespace(method="GET", uri="/api/v1/patients?q=Jane+Roe", path="/api/v1/patients")
    ours, theirs = socket.socketpair()
    with ours, theirs, caplog.at_level(logging.INFO):
        worker.handle_error(request, ours, ("127.0.0.1", 50000), SystemExit(1))  # gunicorn's timeout abort
        ours.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: theirs.recv(65536), b""))
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    assert lines[0] == "HTTP/1.1 500 Internal Server Error"
    assert headers["Content-Type"] == "application/problem+json"
    assert int(headers["Content-Length"]) == len(body)
    problem = json.loads(body)
    assert problem["type"] == "internal-error" and problem["status"] == 500
    assert problem["request_id"] == headers["X-Request-Id"]
    record = next(r for r in caplog.records if r.name == "backend.http_server")
    assert record.levelno == logging.ERROR and record.status == 500 and record.error == "SystemExit"
    assert "Jane" not in caplog.text and "/api/v1/patients" not in caplog.text


def test_gunicorns_own_log_is_json_and_it_keeps_no_access_log_even_when_asked(tmp_path):
    error_log, access_log = tmp_path / "error.log", tmp_path / "access.log"
    cfg = Config()
    cfg.set("errorlog", str(error_log))
    cfg.set("accesslog", str(access_log))
    logger = Logger(cfg)
    try:
        logger.info("Booting worker with pid: %s", 4242)
        logger.exception("Error handling request", exc_info=RuntimeError("Jane Roe +15550100"))
        request = SimpleNamespace(method="GET", uri="/api/v1/patients?q=Jane+Roe", path="/api/v1/patients",
                                  query="q=Jane+Roe", headers=[])
        environ = {"REQUEST_METHOD": "GET", "RAW_URI": request.uri, "SERVER_PROTOCOL": "HTTP/1.1",
                   "QUERY_STRING": request.query, "PATH_INFO": request.path}
        response = SimpleNamespace(status="200 OK", headers=[], sent=2)
        logger.access(response, request, environ, dt.timedelta(milliseconds=5))
    finally:
        for handler in logger.error_log.handlers + logger.access_log.handlers:
            handler.close()
    booting, failed = map(json.loads, error_log.read_text().splitlines())
    assert (booting["logger"], booting["msg"]) == ("gunicorn.error", "Booting worker with pid: 4242")
    assert failed["exc_type"] == "RuntimeError" and "Jane" not in error_log.read_text()
    assert not access_log.exists() or access_log.read_text() == ""
