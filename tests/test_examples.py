"""The examples in mobile_api_spec/examples.json hold: each request is sent again, in order, to a
fresh server, and its answer must match the documented one.

Matching allows what differs from run to run and nothing else: ids (the same documented id must
stand for the same id every time it appears), timestamps, and opaque strings (tokens, cursors,
request ids). After a deliberate change of the contract, re-record the answers with
`pytest tests/test_examples.py --update-examples` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from twilio.request_validator import RequestValidator

from backend.audit import outbox as audit_outbox
from backend.auth.models import Role
from tests.support import make_user
from tests.support.databases import committing_app

EXAMPLES = Path(__file__).resolve().parent.parent / "mobile_api_spec" / "examples.json"
OPENAPI = EXAMPLES.with_name("openapi.json")
#: Answer headers an example documents.
HEADERS = ("Content-Type", "ETag", "Idempotent-Replayed", "Allow")
#: Fields whose values are opaque strings, new on every run (the audit chain hashes timestamps).
OPAQUE = {"token", "device_cookie", "cursor", "next_cursor", "request_id", "hash", "prev_hash"}

TWILIO_AUTH_TOKEN = "examples-twilio-auth-token"

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_MOMENT = r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?"  # or a date
_SPOKEN = r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) [A-Z][a-z]{2} \d{1,2}|\d{1,2}:\d{2} [AP]M"  # in texts to patients
_VOLATILE = re.compile(f"({_UUID})|{_MOMENT}|{_SPOKEN}")
_REFERENCE = re.compile(r"\$\{([^}]+)\}")
_RELATIVE = re.compile(r"now(?:([+-])(\d+)([mhd]))?")
#: A local time of day some days from today, where the rules care (quiet hours, reminders).
_LOCAL_DAY = re.compile(r"day([+-]\d+) (\d{2}):(\d{2})")
#: A date some days from today in America/New_York (report periods).
_LOCAL_DATE = re.compile(r"date([+-]\d+)")
_ZONE = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def app(database_url, tmp_path_factory):
    """A server of its own whose commits are real (the sync examples need finished transactions)."""
    with committing_app(database_url, tmp_path_factory.mktemp("examples"), TWILIO_AUTH_TOKEN=TWILIO_AUTH_TOKEN) as app:
        yield app


@pytest.fixture(autouse=True)
def _rolled_back_transaction():
    """Overrides the suite's rolled-back transaction: commits are real here."""
    yield


class Replay:
    """Sends the documented requests and remembers the answers they refer to."""

    def __init__(self, app, spec: dict) -> None:
        self.app = app
        #: "now" in the requests: one instant per replay, so a retried request is the same request.
        self.now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        self.answers: dict[str, dict] = {}
        self.ids: dict[str, str] = {}  # documented id → this run's id
        self.tokens: dict[str, str] = {}
        self.users: dict[str, dict] = {}
        for key, user in spec["users"].items():
            made = make_user(app, role=Role(user["role"]), username=user["username"], password=spec["password"],
                             display_name=user["display_name"])
            self.users[key] = {"id": str(made.id), "username": made.username}
            signed_in = app.test_client().post("/api/v1/auth/tokens", json={
                "username": made.username, "password": spec["password"], "device_name": f"{key}'s phone"})
            self.tokens[key] = signed_in.get_json()["token"]

    # --- requests ---------------------------------------------------------------------------

    def resolve(self, value):
        """A request value with `${answer.path}`, `${answer:Header}` and `${now±N[mhd]}` filled in."""
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, str):
            return value
        whole = _REFERENCE.fullmatch(value)
        if whole:
            return self._lookup(whole.group(1))
        return _REFERENCE.sub(lambda match: str(self._lookup(match.group(1))), value)

    def _lookup(self, reference: str):
        relative = _RELATIVE.fullmatch(reference)
        if relative:
            sign, amount, unit = relative.groups()
            delta = dt.timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: int(amount)}) if sign else \
                dt.timedelta()
            moment = self.now + (delta if sign != "-" else -delta)
            return moment.isoformat().replace("+00:00", "Z")
        local = _LOCAL_DAY.fullmatch(reference)
        if local:
            days, hour, minute = (int(part) for part in local.groups())
            day = self.now.astimezone(_ZONE).date() + dt.timedelta(days=days)
            moment = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=_ZONE).astimezone(dt.timezone.utc)
            return moment.isoformat().replace("+00:00", "Z")
        local_date = _LOCAL_DATE.fullmatch(reference)
        if local_date:
            return (self.now.astimezone(_ZONE).date() + dt.timedelta(days=int(local_date.group(1)))).isoformat()
        if ":" in reference:
            name, header = reference.split(":", 1)
            return self.answers[name]["headers"][header]
        name, *path = reference.split(".")
        value = self.users[name] if name in self.users else self.answers[name]["body"]
        for step in path:
            value = value[int(step)] if isinstance(value, list) else value[step]
        return value

    def send(self, example: dict) -> dict:
        request = self.resolve(example["request"])
        headers = dict(request.get("headers", {}))
        who = example.get("as")
        if who:
            token = self.tokens.get(who) or self.answers[who]["body"]["token"]
            headers["Authorization"] = f"Bearer {token}"
        if "form" in request:  # a webhook from Twilio (setup, not part of the phone's contract)
            url = self.app.config["PUBLIC_BASE_URL"] + request["path"]
            headers["X-Twilio-Signature"] = RequestValidator(TWILIO_AUTH_TOKEN).compute_signature(url, request["form"])
            response = self.app.test_client().post(request["path"], data=request["form"], headers=headers)
        else:
            response = self.app.test_client().open(request["path"], method=request["method"], headers=headers,
                                                    query_string=request.get("query"), json=request.get("body"))
        answer = {"status": response.status_code,
                  "headers": {name: response.headers[name] for name in HEADERS if name in response.headers},
                  "body": response.get_json(silent=True)}
        self.answers[example["name"]] = answer
        with self.app.app_context():  # as the clock's sequencer does every second (SQLite's audit outbox)
            audit_outbox.move_and_commit()
        return answer

    # --- answers ----------------------------------------------------------------------------

    def mismatches(self, documented, actual, where: str = "") -> list[str]:
        if isinstance(documented, dict) and isinstance(actual, dict):
            if documented.keys() != actual.keys():
                return [f"{where}: fields {sorted(documented)} documented, {sorted(actual)} answered"]
            return [problem for key in documented
                    for problem in self.mismatches(documented[key], actual[key], f"{where}.{key}")]
        if isinstance(documented, list) and isinstance(actual, list):
            return self._list_mismatches(documented, actual, where)
        if isinstance(documented, str) and isinstance(actual, str):
            if where.rsplit(".", 1)[-1] in OPAQUE:
                return []
            return [] if self._same_text(documented, actual) else [f"{where}: {documented!r} documented, "
                                                                    f"{actual!r} answered"]
        if documented != actual or type(documented) is not type(actual):
            return [f"{where}: {documented!r} documented, {actual!r} answered"]
        return []

    def _list_mismatches(self, documented: list, actual: list, where: str) -> list[str]:
        if len(documented) != len(actual):
            return [f"{where}: {len(documented)} items documented, {len(actual)} answered"]
        saved = dict(self.ids)
        in_order = [p for d, a in zip(documented, actual, strict=True) for p in self.mismatches(d, a, where + "[]")]
        if not in_order:
            return []
        self.ids = saved  # the order may differ (records sorted by a random id): match each item
        remaining = list(actual)
        for index, item in enumerate(documented):
            for candidate in remaining:
                before = dict(self.ids)
                if not self.mismatches(item, candidate, f"{where}[{index}]"):
                    remaining.remove(candidate)
                    break
                self.ids = before
            else:
                return in_order
        return []

    def _same_text(self, documented: str, actual: str) -> bool:
        """Equal but for ids (mapped consistently) and timestamps (any)."""
        if _VOLATILE.sub("", documented) != _VOLATILE.sub("", actual):
            return False
        documented_marks, actual_marks = list(_VOLATILE.finditer(documented)), list(_VOLATILE.finditer(actual))
        if len(documented_marks) != len(actual_marks):
            return False
        marks = zip(documented_marks, actual_marks, strict=True)
        return all(bool(d.group(1)) == bool(a.group(1)) and (not d.group(1) or self._same_id(d.group(1), a.group(1)))
                   for d, a in marks)

    def _same_id(self, documented: str, actual: str) -> bool:
        known = self.ids.get(documented)
        if known is None:
            if actual in self.ids.values():
                return False
            self.ids[documented] = actual
            return True
        return known == actual


def _operations() -> set[tuple[str, str]]:
    spec = json.loads(OPENAPI.read_text())
    return {(method.upper(), path) for path, operations in spec["paths"].items() for method in operations
            if method in ("get", "post", "put", "patch", "delete")}


def _operation_of(method: str, path: str, operations: set[tuple[str, str]]) -> tuple[str, str] | None:
    for operation_method, template in operations:
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if operation_method == method and re.match(pattern, path):
            return operation_method, template
    return None


def test_every_endpoint_of_the_contract_has_an_example():
    spec = json.loads(EXAMPLES.read_text())
    operations = _operations()
    covered = {_operation_of(e["request"]["method"], _REFERENCE.sub("x", e["request"]["path"]), operations)
               for e in spec["examples"] if not e.get("setup")}
    assert None not in covered, "an example calls a path the contract does not have"
    assert sorted(operations - covered) == []


def test_every_documented_example_still_holds(app, request):
    spec = json.loads(EXAMPLES.read_text())
    names = [example["name"] for example in spec["examples"]]
    assert len(names) == len(set(names)), "example names are unique"
    replay = Replay(app, spec)
    update = request.config.getoption("--update-examples")
    failures = []
    for example in spec["examples"]:
        answer = replay.send(example)
        if update:
            example["response"] = answer
            continue
        documented = example["response"]
        problems = replay.mismatches({"status": documented["status"], "headers": documented["headers"]},
                                     {"status": answer["status"], "headers": answer["headers"]}, "")
        problems += replay.mismatches(documented["body"], answer["body"], "body")
        failures += [f"{example['name']} ({example['request']['method']} {example['request']['path']}) {p}"
                     for p in problems]
    if update:
        spec["recorded_at"] = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()
        EXAMPLES.write_text(json.dumps(spec, indent=2, ensure_ascii=False) + "\n")
    assert failures == []
