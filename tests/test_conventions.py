"""The conventions every endpoint shares (api.md "Conventions"): problem+json errors, body
limits, request ids, strict schemas, and an access rule declared on every endpoint."""

from __future__ import annotations

import json

import pytest

from backend.auth.access import rule_for
from tests.conftest import LEAK_SENTINEL

PROBLEM = "application/problem+json"


def assert_problem(response, status: int, type_: str):
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["type"] == type_
    assert body["status"] == status
    assert body["title"] and body["detail"]
    assert body["request_id"] == response.headers["X-Request-Id"]
    return body


def test_unknown_path_is_a_problem_not_an_html_page(anonymous):
    assert_problem(anonymous.get("/api/v1/no-such-thing"), 404, "not-found")


def test_wrong_method_is_405_with_the_allowed_methods(anonymous):
    response = anonymous.put("/health", json={})
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["Allow"]


def test_options_lists_the_allowed_methods_without_sign_in(anonymous):
    response = anonymous.request("OPTIONS", "/api/v1/me")
    assert response.status_code == 200
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "OPTIONS"}
    assert response.data == b"" and "Content-Type" not in response.headers  # no HTML, not even empty


def test_malformed_json_is_400_invalid_json(anonymous):
    response = anonymous.client.post("/api/v1/auth/tokens", data='{"username": "a",',
                                     content_type="application/json")
    assert_problem(response, 400, "invalid-json")


def test_a_field_sent_twice_is_400_not_last_one_wins(admin):
    def create(body: str):
        return admin.client.post("/api/v1/users", data=body, content_type="application/json",
                                 headers={"Authorization": f"Bearer {admin.token}"})

    twice = create('{"username": "twice", "display_name": "T", "password": "a long passphrase here", '
                   '"role": "coach", "role": "admin"}')
    body = assert_problem(twice, 400, "invalid-json")
    assert '"role"' in body["detail"]
    nested = create('{"username": "nested", "display_name": "N", "password": "a long passphrase here", '
                    '"role": "coach", "x": [{"a": 1, "a": 2}]}')
    assert_problem(nested, 400, "invalid-json")
    users = admin.get("/api/v1/users?limit=200").get_json()["items"]
    assert not {"twice", "nested"} & {u["username"] for u in users}


def test_a_body_that_is_not_json_is_415(anonymous):
    response = anonymous.client.post("/api/v1/auth/tokens", data="username=a&password=b",
                                     content_type="application/x-www-form-urlencoded")
    body = assert_problem(response, 415, "unsupported-media-type")
    assert "application/json" in body["detail"]


def test_a_70_kib_body_is_413_and_never_reaches_the_view(admin):
    big = json.dumps({"username": "too.big", "display_name": "y" * 70 * 1024, "role": "coach",
                      "password": "p" * 10})
    response = admin.client.post("/api/v1/users", data=big, content_type="application/json",
                                 headers={"Authorization": f"Bearer {admin.token}"})
    assert_problem(response, 413, "payload-too-large")
    users = admin.get("/api/v1/users?limit=200").get_json()["items"]
    assert all(u["username"] != "too.big" for u in users)


def test_an_unknown_field_is_422_naming_the_field(anonymous):
    response = anonymous.post("/api/v1/auth/tokens", json={"username": "a", "password": "b", "pasword": "c"})
    body = assert_problem(response, 422, "validation-error")
    assert body["errors"] == {"pasword": ["Unknown field."]}


def test_a_misspelt_query_parameter_is_422_not_silently_ignored(admin):
    body = assert_problem(admin.get("/api/v1/audit-events?acter_id=x"), 422, "validation-error")
    assert body["errors"] == {"acter_id": ["Unknown field."]}


@pytest.mark.parametrize("depth", [40, 500, 900, 5000])
def test_absurdly_nested_json_is_refused_not_500(anonymous, depth):
    for body in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth):
        response = anonymous.client.post("/api/v1/auth/tokens", data=body, content_type="application/json")
        assert response.status_code in (400, 422), (depth, response.status_code)
        assert response.mimetype == PROBLEM


def test_a_204_has_no_body_and_no_content_type(coach):
    response = coach.delete("/api/v1/auth/tokens/current")
    assert response.status_code == 204 and response.data == b"" and "Content-Type" not in response.headers


def test_validation_errors_list_every_bad_field(admin):
    response = admin.post("/api/v1/users", json={"username": "", "role": "wizard", "password": "short"})
    body = assert_problem(response, 422, "validation-error")
    assert set(body["errors"]) == {"username", "role", "password", "display_name"}


def test_a_timestamp_without_offset_is_422(admin):
    response = admin.get("/api/v1/audit-events?since=2026-11-21T10:00:00")
    body = assert_problem(response, 422, "validation-error")
    assert "since" in body["errors"]


def test_a_forged_cursor_is_422_not_500(admin):
    body = assert_problem(admin.get("/api/v1/users?cursor=bm90LWEtY3Vyc29y"), 422, "validation-error")
    assert "cursor" in body["errors"]


def test_an_unexpected_error_is_500_with_request_id_and_no_trace(anonymous, json_log):
    response = anonymous.get("/_test/boom")
    body = assert_problem(response, 500, "internal-error")
    text = response.get_data(as_text=True)
    assert "Traceback" not in text and LEAK_SENTINEL not in text and "RuntimeError" not in text
    # The log names the failure by type and stack, without the message (it may quote patient data).
    error = next(line for line in json_log.lines() if line["msg"] == "unhandled exception")
    assert error["exc_type"] == "RuntimeError"
    assert error["request_id"] == body["request_id"]
    assert LEAK_SENTINEL not in json_log.text()


def test_every_response_carries_a_request_id(anonymous):
    ids = {anonymous.get(path).headers["X-Request-Id"] for path in ("/health", "/ready", "/nope", "/api/v1/me")}
    assert len(ids) == 4 and all(ids)


def test_a_well_formed_incoming_request_id_is_kept_and_a_bad_one_replaced(anonymous):
    kept = anonymous.get("/health", headers={"X-Request-Id": "phone-1234.abc"})
    assert kept.headers["X-Request-Id"] == "phone-1234.abc"
    replaced = anonymous.get("/health", headers={"X-Request-Id": "<script>"})
    assert replaced.headers["X-Request-Id"] != "<script>"


def test_every_endpoint_declares_who_may_call_it(app):
    missing = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in ("static",) or rule.rule.startswith("/_test"):
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            with app.test_request_context(rule.rule, method=method):
                if rule_for(rule.endpoint, method) is None:
                    missing.append(f"{method} {rule.rule}")
    assert missing == []


@pytest.mark.parametrize("path", ["/api/v1/me", "/api/v1/users", "/api/v1/audit-events", "/api/v1/me/devices"])
def test_protected_endpoints_answer_401_without_a_token(anonymous, path):
    response = anonymous.get(path)
    assert_problem(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("value", ["a\u0000b", "\ud800"])
def test_text_that_cannot_be_stored_is_422_naming_the_field(anonymous, value):
    response = anonymous.post("/api/v1/auth/tokens", json={"username": "nurse", "password": "pw",
                                                           "device_name": value})
    body = assert_problem(response, 422, "validation-error")
    assert list(body["errors"]) == ["device_name"]


def test_a_nul_in_a_query_parameter_is_422(admin):
    assert_problem(admin.get("/api/v1/audit-events?action=a%00b"), 422, "validation-error")


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59-23:59"])
def test_a_timestamp_with_no_utc_equivalent_is_422(admin, moment):
    body = assert_problem(admin.get(f"/api/v1/audit-events?since={moment}"), 422, "validation-error")
    assert "since" in body["errors"]


def test_a_cursor_the_server_did_not_sign_is_422(admin):
    import base64

    forged = base64.urlsafe_b64encode(b"[99999999999999999999]").decode().rstrip("=")
    assert_problem(admin.get(f"/api/v1/audit-events?cursor={forged}"), 422, "validation-error")
    assert_problem(admin.get(f"/api/v1/audit-events?cursor={forged}.abc"), 422, "validation-error")


def test_a_chunked_body_is_read_whole_and_limited_like_any_other(app, anonymous):
    import io

    chunked = {"Transfer-Encoding": "chunked", "Content-Type": "application/json"}
    small = anonymous.client.post("/api/v1/auth/tokens", headers=chunked,
                                  input_stream=io.BytesIO(b'{"username": "a", "password": "b"}'))
    assert small.status_code == 401  # read whole: the credentials were checked
    big = anonymous.client.post("/api/v1/auth/tokens", headers=chunked,
                                input_stream=io.BytesIO(b'{"username": "a", "password": "b"}' + b" " * 70_000))
    assert_problem(big, 413, "payload-too-large")


def test_a_database_conflict_asks_the_client_to_retry(anonymous):
    response = anonymous.get("/_test/busy")
    body = assert_problem(response, 503, "service-unavailable")
    assert response.headers["Retry-After"] == "1" and "nothing was saved" in body["detail"]


def test_a_query_parameter_given_twice_is_422_naming_it(admin):
    body = assert_problem(admin.get("/api/v1/audit-events?limit=1&limit=3"), 422, "validation-error")
    assert body["errors"] == {"limit": ["Given more than once; send it once."]}
    assert "limit" in body["detail"]


@pytest.mark.parametrize("codings", ["gzip, chunked", "identity, chunked", "deflate,chunked"])
def test_a_transfer_coding_other_than_chunked_is_501_not_silently_ignored(anonymous, codings):
    import io

    response = anonymous.client.post("/api/v1/auth/tokens", headers={
        "Transfer-Encoding": codings, "Content-Type": "application/json"},
        input_stream=io.BytesIO(b'{"username": "a", "password": "b"}'))
    assert "transfer coding" in assert_problem(response, 501, "not-implemented")["detail"]


def test_an_error_about_the_body_as_a_whole_is_under_the_empty_name_never_an_internal_one(coach):
    """Cross-field rules are under "" (the JSON Pointer of the whole body), as the guide says."""
    from tests.conftest import TEST_PATIENT

    body = assert_problem(coach.post(f"/api/v1/patients/{TEST_PATIENT}/messages", json={
        "body": "Hi", "template_id": "6f1c1a7e-51c6-4a6b-9b59-3a1f8f0e4a10"}), 422, "validation-error")
    assert body["errors"] == {"": ["Give either `body` or `template_id`."]}
    assert body["detail"].startswith("Give either `body` or `template_id`.")
    assert "_schema" not in json.dumps(body)
    not_an_object = assert_problem(coach.post(f"/api/v1/patients/{TEST_PATIENT}/messages", json=["Hi"]), 422,
                                   "validation-error")
    assert list(not_an_object["errors"]) == [""]
