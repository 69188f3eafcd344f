"""The published contract: served by the app and committed under mobile_api_spec/."""

from __future__ import annotations

import json
import re

from backend import SPEC_PATH, render_spec


def test_the_committed_spec_matches_what_the_code_generates(app):
    with app.app_context():
        generated = json.loads(render_spec())
    committed = json.loads(SPEC_PATH.read_text())
    assert committed == generated, (
        "mobile_api_spec/openapi.json is stale: run `flask --app backend spec write` "
        "and add a changelog entry to mobile_api_spec/README.md")


def test_the_spec_is_served_without_sign_in(anonymous):
    response = anonymous.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["openapi"].startswith("3.")
    assert "/api/v1/auth/tokens" in spec["paths"] and "/ready" in spec["paths"]


def test_errors_are_documented_as_problem_details(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    unprocessable = spec["components"]["responses"]["UNPROCESSABLE_ENTITY"]
    assert list(unprocessable["content"]) == ["application/problem+json"]
    assert spec["security"] == [{"bearer": []}]
    assert spec["paths"]["/api/v1/auth/tokens"]["post"]["security"] == []


def test_every_operation_documents_its_request_and_response_schemas(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    gaps = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            success = {code: r for code, r in operation["responses"].items() if code.startswith("2")}
            if not success:
                gaps.append(f"{method} {path}: no success response")
            for code, response in success.items():
                if code != "204" and "content" not in response:
                    gaps.append(f"{method} {path}: {code} has no schema")
            if method in ("post", "put", "patch") and "requestBody" not in operation \
                    and not path.endswith(("/tokens/current", "/read")):
                gaps.append(f"{method} {path}: no request body schema")
            if "x-roles" not in operation and operation.get("security") != []:
                gaps.append(f"{method} {path}: no x-roles")
    assert gaps == []


def test_problems_document_their_extension_members_and_allow_more(client):
    """RFC 9457 problems carry extension members (`current` on a 412, `status_now` on an
    invalid transition…): the contract must not forbid them, or strict clients reject real answers."""
    problem = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["Problem"]
    assert problem.get("additionalProperties", True) is not False
    assert {"current", "status_now", "words", "existing_id", "sms_status", "errors"} <= set(problem["properties"])


def _operations(spec):
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in {"get", "put", "post", "delete", "patch", "head", "options", "trace"}:
                yield f"{method.upper()} {path}", operation


def test_every_operation_has_its_own_operation_id(anonymous):
    """Generated clients name their methods after `operationId`; one missing, and a generator
    invents a name from the path that changes when anything around it does. Declare it on the
    view: `@blp.doc(operationId="listThings")` as its first decorator."""
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    ids = {name: operation.get("operationId") for name, operation in _operations(spec)}
    assert [name for name, operation_id in ids.items() if not operation_id] == []
    duplicates = {i for i in ids.values() if list(ids.values()).count(i) > 1}
    assert duplicates == set()
    assert all(re.fullmatch(r"[a-z][A-Za-z]+", i) for i in ids.values()), "lowerCamelCase, letters only"


def test_the_guide_lists_every_operation_id_as_the_spec_declares_it(anonymous):
    """The guide's table is the promise (stable within v1): it names each operation as the spec does."""
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    declared = {name: operation["operationId"] for name, operation in _operations(spec)}
    guide = (SPEC_PATH.parent / "README.md").read_text()
    listed = dict((f"{m} {p}", i) for i, m, p in re.findall(r"^\| `(\w+)` \| `(\w+) ([^`]+)` \|", guide, re.M))
    assert listed == declared


def test_the_spec_names_a_server(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    assert spec["servers"] and spec["servers"][0]["url"] == "/"
