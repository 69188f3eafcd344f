"""The OpenAPI document: flask-smorest configured to describe errors as problem+json.

The spec is generated from the marshmallow schemas and views, served at
`/api/v1/openapi.json`, and committed as `mobile_api_spec/openapi.json`
(`flask --app backend spec write`); a test fails when the two differ.
"""

from __future__ import annotations

import functools
import http

import flask_smorest
import marshmallow as ma
from apispec import BasePlugin
from flask_smorest import Api
from flask_smorest.utils import prepare_response
from webargs.flaskparser import FlaskParser

from backend.errors import PROBLEM_MIMETYPE


class ProblemSchema(ma.Schema):
    """An error (RFC 9457 problem details). Extension members named below come with the
    problem types that use them; others may be added (RFC 9457 §3.2): ignore what you do not know."""

    class Meta:
        unknown = ma.INCLUDE  # documented as open: additional members are allowed

    type = ma.fields.String(required=True, metadata={"description": "Problem type slug, e.g. `validation-error`."})
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True, metadata={"description": "What went wrong, for people."})
    request_id = ma.fields.String(metadata={"description": "Quote it when reporting a problem."})
    errors = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.List(ma.fields.String()),
        metadata={"description": "Messages by field (`validation-error`, `message-privacy`)."},
    )
    words = ma.fields.List(ma.fields.String(), metadata={
        "description": "`message-privacy`: the words that would reveal the service."})
    existing_id = ma.fields.String(allow_none=True, metadata={
        "description": "409 on a duplicate: the record that already exists."})
    status_now = ma.fields.String(metadata={"description": "`invalid-transition`: the record's current status."})
    sms_status = ma.fields.String(metadata={"description": "`sms-not-permitted`: the patient's SMS status."})
    current = ma.fields.Raw(metadata={
        "description": "412 `precondition-failed`: the record as it is now (its ETag is in the header), "
                       "shaped as the record's own GET answers it.",
        "anyOf": [{"$ref": f"#/components/schemas/{name}"}
                  for name in ("Patient", "Episode", "Task", "Appointment", "Program")]})


def named_choice(self, field, ret, **kwargs) -> dict:
    """apispec attribute function: a `backend.schemas.Choice` field becomes a `$ref` to its named
    enum (registered on first use), `X | null` when it allows null (OpenAPI 3.1)."""
    component = getattr(field, "component", None)
    if component is None:
        return {}
    if component not in self.spec.components.schemas:
        self.spec.components.schema(component, {"type": "string", "enum": field.choices})
    kept = {key: ret[key] for key in ("description", "readOnly", "writeOnly", "default") if key in ret}
    ret.clear()
    ref = {"$ref": f"#/components/schemas/{component}"}
    return {**kept, "anyOf": [ref, {"type": "null"}]} if field.allow_none else {**kept, **ref}


class ArgumentsParser(FlaskParser):
    """webargs' parser, with one instance of each arguments schema for the process: given a
    class (as `blp.arguments` is), webargs made a new instance for every request, 0.07 ms of a
    caseload request's CPU. A schema loads without keeping anything between calls."""

    def _get_schema(self, argmap, req):
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            return _schema_instance(argmap)
        return super()._get_schema(argmap, req)


@functools.cache
def _schema_instance(schema_class: type[ma.Schema]) -> ma.Schema:
    return schema_class()


class Blueprint(flask_smorest.Blueprint):
    """flask-smorest's Blueprint, strict about query parameters too: an unknown one is a 422
    (a misspelt filter must not silently return everything)."""

    ARGUMENTS_PARSER = ArgumentsParser(unknown=None)  # None: each schema's Meta.unknown (RAISE)


IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]{1,255}$"},
    "description": "Retry-safe POST: the same key and body replay the first response "
                   "(`Idempotent-Replayed: true`); the same key with another body is a 422. 1 to 255 visible "
                   "ASCII characters (a UUID is ideal); kept at least 7 days.",
}


IF_MATCH = {
    "in": "header",
    "name": "If-Match",
    "required": True,
    "schema": {"type": "string"},
    "description": "The ETag you last read: missing → 428, stale → 412 with the current record.",
}


#: Response headers clients rely on (components/headers), by name.
HEADERS = {
    "X-Request-Id": {"description": "This request's id (yours if you sent a valid one): quote it in bug reports.",
                     "schema": {"type": "string"}},
    "ETag": {"description": "The record's version: send it as `If-Match` to change the record.",
             "schema": {"type": "string", "pattern": '^"[0-9]+"$'}},
    "Idempotent-Replayed": {"description": "`true` when this is the stored answer to an earlier request with the "
                                           "same `Idempotency-Key`: nothing was done again.",
                            "schema": {"type": "string", "enum": ["true"]}},
    "Retry-After": {"description": "Seconds to wait before trying again.", "required": True,
                    "schema": {"type": "string", "pattern": "^[0-9]+$"}},
}
#: Records that people edit: their reads, creates and PATCH answers carry an `ETag`.
VERSIONED = ("Patient", "Episode", "Task", "Appointment", "Program")
#: Statuses whose answers say when to come back.
_RETRY_LATER = ("429", "503")


def _response_headers(status: str, *, etag: bool = False, replayable: bool = False) -> dict:
    headers = {"X-Request-Id": "X-Request-Id"}
    if etag:
        headers["ETag"] = "ETag"
    if replayable:
        headers["Idempotent-Replayed"] = "Idempotent-Replayed"
    if status in _RETRY_LATER:
        headers["Retry-After"] = "Retry-After"
    return headers


class CommonResponsesPlugin(BasePlugin):
    """Documents what many operations share: 401 without a valid token, 404 for a record that
    does not exist or is outside the caller's scope, 503 in an outage, `Idempotency-Key` on
    signed-in POSTs, and the response headers (`X-Request-Id` on all, `ETag` on a versioned
    record, `Idempotent-Replayed` on a signed-in POST's success, `Retry-After` on 429 and 503)."""

    def operation_helper(self, path=None, operations=None, **kwargs):
        for method, operation in (operations or {}).items():
            responses = operation.setdefault("responses", {})
            signed_in = operation.get("security") != []
            if path != "/health":  # the one probe that touches nothing that can fail
                responses.setdefault("503", "SERVICE_UNAVAILABLE")
            if signed_in:
                responses.setdefault("401", "UNAUTHORIZED")
                if method == "post":
                    operation.setdefault("parameters", []).append(IDEMPOTENCY_KEY_PARAMETER)
            if path and "{" in path:
                responses.setdefault("404", "NOT_FOUND")
            if any(p.get("name") == "If-Match" for p in operation.get("parameters", []) if isinstance(p, dict)):
                responses.setdefault("412", "PRECONDITION_FAILED")
                responses.setdefault("428", "PRECONDITION_REQUIRED")
            for code, response in responses.items():
                if not isinstance(response, dict):
                    continue  # a component: its headers are documented there
                status = str(code)
                success = status.startswith("2")
                schema = response.get("content", {}).get("application/json", {}).get("schema", {})
                versioned = success and method in ("get", "post", "patch") and isinstance(schema, dict) \
                    and schema.get("$ref", "").rsplit("/", 1)[-1] in VERSIONED
                response.setdefault("headers", {}).update(_response_headers(
                    status, etag=versioned, replayable=success and signed_in and method == "post"))


def problem(blp, status: int, description: str, **kwargs):
    """Document an error answer of a view as problem+json."""
    return blp.alt_response(status, schema=ProblemSchema, content_type=PROBLEM_MIMETYPE,
                            description=description, **kwargs)


class BridgelineApi(Api):
    """flask-smorest's Api with problem+json errors (handlers live in `backend.errors`)."""

    ERROR_SCHEMA = ProblemSchema

    def __init__(self) -> None:
        super().__init__(spec_kwargs={"extra_plugins": [CommonResponsesPlugin()]})

    def _init_spec(self, **kwargs) -> None:
        super()._init_spec(**kwargs)
        self.ma_plugin.converter.add_attribute_function(named_choice)

    def _register_error_handlers(self) -> None:
        # backend.errors registers one handler for every exception; flask-smorest's would
        # answer plain JSON and drop headers such as Allow.
        pass

    def _register_pagination_header(self) -> None:
        # Lists page with cursors in the body (`next_cursor`), not flask-smorest's page header.
        pass

    def _register_responses(self) -> None:
        for name, header in HEADERS.items():
            self.spec.components.header(name, header, lazy=True)
        for status in http.HTTPStatus:
            # A 412 carries the current record's ETag, beside the record in `current`.
            response = {"description": status.phrase,
                        "headers": _response_headers(str(status.value), etag=status == 412)}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
                prepare_response(response, self.spec, PROBLEM_MIMETYPE)
            else:
                prepare_response(response, self.spec, self.DEFAULT_RESPONSE_CONTENT_TYPE)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA,
                    "headers": _response_headers("default")}
        prepare_response(response, self.spec, PROBLEM_MIMETYPE)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

