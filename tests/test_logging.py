"""Logs are JSON lines with the request id, and carry no secrets or patient data."""

from __future__ import annotations

from tests.support import make_user


def test_each_request_logs_one_json_line_with_its_request_id(anonymous, json_log):
    response = anonymous.get("/health", headers={"X-Request-Id": "req-42"})
    lines = [line for line in json_log.lines() if line["msg"] == "request"]
    assert lines[-1]["request_id"] == response.headers["X-Request-Id"] == "req-42"
    assert lines[-1]["status"] == 200 and lines[-1]["route"] == "/health"


def test_query_strings_and_passwords_never_reach_the_log(app, anonymous, json_log):
    user = make_user(app)
    anonymous.post("/api/v1/auth/tokens", json={"username": user.username, "password": "hunter2-wrong"})
    anonymous.sign_in(user.username, user.password)
    anonymous.get("/api/v1/me?q=Jane%20Roe")
    text = json_log.text()
    assert "hunter2-wrong" not in text and user.password not in text and anonymous.token not in text
    assert "Jane" not in text


def test_a_signed_in_request_is_logged_with_the_users_id_and_an_anonymous_one_without(app, anonymous, json_log):
    user = make_user(app)
    anonymous.get("/health")
    anonymous.sign_in(user.username, user.password)
    anonymous.get("/api/v1/me")
    health, me = [line for line in json_log.lines() if line["msg"] == "request" and line["route"] in ("/health",
                                                                                                    "/api/v1/me")]
    assert health["user_id"] is None
    assert me["user_id"] == str(user.id)
