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


def _committed_spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def _validator(spec: dict, component: str):
    """A JSON Schema 2020-12 validator (OpenAPI 3.1's dialect) for one schema of the spec."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    registry = Registry().with_resource("urn:bridgeline", Resource.from_contents(spec, DRAFT202012))
    return Draft202012Validator({"$ref": f"urn:bridgeline#/components/schemas/{component}"}, registry=registry)


def test_the_committed_spec_is_valid_openapi_3_1_to_an_outside_validator():
    from openapi_spec_validator import OpenAPIV31SpecValidator

    spec = _committed_spec()
    assert spec["openapi"] == "3.1.0"
    assert [str(e.message) for e in OpenAPIV31SpecValidator(spec).iter_errors()] == []


def test_an_answer_with_a_field_added_later_in_v1_still_matches_the_committed_spec(admin):
    """Additive changes are safe (the guide): a generated client validating answers against the
    spec must accept a field it does not know yet, in the record and in what it nests."""
    created = admin.post("/api/v1/programs", json={
        "name": "Harbor OTP", "service": "otp", "asam_level": "1", "asam_edition": "4th",
        "accepting_patients": True, "external": False})
    assert created.status_code == 201
    program = {**created.get_json(), "added_in_1_99": {"anything": [1, 2]}}
    validator = _validator(_committed_spec(), "ProgramPage")
    assert list(validator.iter_errors({"items": [program], "next_cursor": None, "added": True})) == []
    assert list(_validator(_committed_spec(), "Program").iter_errors({**program, "version": "1"})) != [], \
        "the schema still checks the fields it knows"


def test_requests_stay_closed_in_the_spec_and_at_the_server(admin):
    spec = _committed_spec()
    closed = [name for name, schema in spec["components"]["schemas"].items()
              if schema.get("additionalProperties") is False]
    assert {"ProgramCreate", "PatientCreate", "MessageCreate", "TokenRequest"} <= set(closed)
    response_schemas = {"Program", "Patient", "Message", "Token", "CaseloadEntry", "Handoff", "Consent"}
    assert response_schemas.isdisjoint(closed)
    body = {"name": "Harbor OTP", "service": "otp", "accepting_patients": True, "external": False, "colour": "red"}
    assert list(_validator(spec, "ProgramCreate").iter_errors(body)) != []
    refused = admin.post("/api/v1/programs", json=body)
    assert refused.status_code == 422 and "colour" in refused.get_json()["errors"]


def test_fields_a_generator_types_are_typed(anonymous):
    """No untyped or free-form property where the guide names the fields: generators turn those
    into `Any` or an empty object."""
    schemas = anonymous.get("/api/v1/openapi.json").get_json()["components"]["schemas"]
    untyped = [f"{name}.{field}" for name, schema in schemas.items()
               for field, prop in schema.get("properties", {}).items()
               if not {"type", "$ref", "anyOf", "oneOf", "allOf"} & set(prop)]
    assert untyped == []
    assert schemas["Message"]["properties"]["from_phone"]["type"] == ["string", "null"]
    assert schemas["Consent"]["properties"]["revocation"]["anyOf"] == [
        {"$ref": "#/components/schemas/Revocation"}, {"type": "null"}]
    assert schemas["CaseloadEntry"]["properties"]["open_handoff"]["anyOf"] == [
        {"$ref": "#/components/schemas/OpenHandoff"}, {"type": "null"}]
    assert {"$ref": "#/components/schemas/Patient"} in schemas["Problem"]["properties"]["current"]["anyOf"]
    assert schemas["AsamEdition"] == {"type": "string", "enum": ["3rd", "4th"]}
    for name in ("Program", "ProgramCreate", "ProgramFields"):
        assert schemas[name]["properties"]["asam_edition"]["anyOf"][0] == {"$ref": "#/components/schemas/AsamEdition"}


def test_the_headers_clients_rely_on_are_documented(anonymous):
    spec = anonymous.get("/api/v1/openapi.json").get_json()
    paths, responses = spec["paths"], spec["components"]["responses"]

    def headers(path, method, status):
        response = paths[path][method]["responses"][status]
        if "$ref" in response:
            response = responses[response["$ref"].rsplit("/", 1)[-1]]
        return set(response.get("headers", {}))

    assert {"ETag", "X-Request-Id"} <= headers("/api/v1/patients/{patient_id}", "get", "200")
    assert {"ETag", "X-Request-Id"} <= headers("/api/v1/patients/{patient_id}", "patch", "200")
    assert "ETag" in headers("/api/v1/patients/{patient_id}", "patch", "412")
    assert "Idempotent-Replayed" in headers("/api/v1/patients/{patient_id}/messages", "post", "202")
    assert "Retry-After" in headers("/api/v1/auth/tokens", "post", "429")
    assert "Retry-After" in headers("/api/v1/caseload", "get", "503")
    for name, operation in _operations(spec):
        method, path = name.split(" ", 1)
        for status in operation["responses"]:
            assert "X-Request-Id" in headers(path, method.lower(), status), f"{name} {status}"


def test_each_arguments_schema_is_made_once_for_the_process_not_for_every_request():
    """webargs would make a new instance of a schema given as a class for every request."""
    from backend.caseload.schemas import CaseloadQuerySchema
    from backend.openapi import Blueprint

    first = Blueprint.ARGUMENTS_PARSER._get_schema(CaseloadQuerySchema, None)
    assert isinstance(first, CaseloadQuerySchema)
    assert Blueprint.ARGUMENTS_PARSER._get_schema(CaseloadQuerySchema, None) is first
