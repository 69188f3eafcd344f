"""The phone team's experience, tested: a client generated from the committed spec by a
generator nobody here wrote (openapi-python-client), driving the real server over HTTP.

The phone team will not hand-write a client; they generate one and live with the names and
types that come out. So: operation ids become the functions' names, nullable objects `X | None`,
a closed set one enum, answers parse (problem answers included, with their `current` record),
and a field added to an answer within v1 does not break parsing.
"""

from __future__ import annotations

import datetime as dt
import importlib
import subprocess
import sys
import uuid
from pathlib import Path

import attrs
import pytest

from tests.test_procfile import ROOT, env, released, run, web  # noqa: F401 - fixtures and helpers

GENERATOR = str(Path(sys.executable).parent / "openapi-python-client")
SPEC = ROOT / "mobile_api_spec" / "openapi.json"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """The client package `bridgeline_client`, generated from the committed spec (about 2 s)."""
    where = tmp_path_factory.mktemp("generated")
    venv_bin = str(Path(sys.executable).parent)  # the generator formats with ruff from PATH
    result = subprocess.run([GENERATOR, "generate", "--path", str(SPEC), "--meta", "none",
                             "--output-path", str(where / "bridgeline_client")],
                            capture_output=True, text=True, timeout=120, cwd=where,
                            env={"PATH": venv_bin + ":/usr/bin:/bin", "HOME": str(where)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module("bridgeline_client")
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == "bridgeline_client" or n.startswith("bridgeline_client.")]:
            del sys.modules[name]


def _model(package, name):
    return importlib.import_module(f"{package.__name__}.models").__dict__[name]


def _annotation(model, field: str) -> set[str]:
    return {part.strip() for part in str(attrs.fields_dict(model)[field].type).split("|")}


@pytest.mark.once
def test_the_generated_models_have_the_types_the_guide_describes(generated):
    models = importlib.import_module("bridgeline_client.models")
    assert _annotation(models.Consent, "revocation") == {"None", "Revocation"}
    assert _annotation(models.Message, "from_phone") == {"None", "str"}
    assert _annotation(models.CaseloadEntry, "open_handoff") == {"None", "OpenHandoff"}
    assert {"id", "to_level", "status", "accept_by", "arrive_by", "overdue"} <= set(attrs.fields_dict(
        models.OpenHandoff))
    assert _annotation(models.Problem, "current") == {"Patient", "Episode", "Task", "Appointment", "Program",
                                                      "Unset"}
    for name in ("Program", "ProgramCreate", "ProgramFields"):
        assert _annotation(getattr(models, name), "asam_edition") >= {"AsamEdition", "None"}
    assert [e.value for e in models.AsamEdition] == ["3rd", "4th"]
    assert not [name for name in dir(models) if "AsamEdition" in name and name != "AsamEdition"]
    assert {"type_", "title", "status", "detail", "errors"} <= set(attrs.fields_dict(models.Problem))
    # Operation ids are the functions' names.
    for module in ("caseload.list_caseload", "activities.create_encounter", "cases.get_patient",
                   "cases.update_patient", "auth.sign_in", "outreach.send_message", "handoffs.create_handoff"):
        importlib.import_module(f"bridgeline_client.api.{module}")


@pytest.mark.once
def test_a_generated_client_signs_in_reads_the_caseload_creates_retries_and_reads_problems(
        generated, released):  # noqa: F811
    from bridgeline_client import AuthenticatedClient, Client
    from bridgeline_client.api.activities import create_encounter
    from bridgeline_client.api.auth import sign_in
    from bridgeline_client.api.caseload import list_caseload
    from bridgeline_client.api.cases import get_patient, update_patient
    from bridgeline_client.api.outreach import send_message
    from bridgeline_client.models import (
        Caseload,
        Encounter,
        EncounterCreate,
        EncounterCreateKind,
        MessageCreate,
        OpenHandoff,
        Patient,
        PatientUpdate,
        Problem,
        Token,
        TokenRequest,
    )

    assert run("flask --app backend demo seed", released).returncode == 0
    with web(released) as base:
        signed_in = sign_in.sync_detailed(client=Client(base_url=base), body=TokenRequest(
            username="coach.maria", password="demo-coach-pass", device_name="Generated client"))
        assert signed_in.status_code == 201 and isinstance(signed_in.parsed, Token), signed_in.content
        coach = AuthenticatedClient(base_url=base, token=signed_in.parsed.token, raise_on_unexpected_status=True)

        caseload = list_caseload.sync(client=coach)
        assert isinstance(caseload, Caseload) and caseload.items and caseload.next_cursor is None
        assert all(e.open_handoff is None or isinstance(e.open_handoff, OpenHandoff) for e in caseload.items)
        assert any(isinstance(e.open_handoff, OpenHandoff) for e in caseload.items), "the demo has open handoffs"
        entry = caseload.items[0]

        body = EncounterCreate(id=uuid.uuid4(), kind=EncounterCreateKind.PHONE,
                               occurred_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5))
        first = create_encounter.sync_detailed(entry.episode_id, client=coach, body=body, idempotency_key="gen-1")
        again = create_encounter.sync_detailed(entry.episode_id, client=coach, body=body, idempotency_key="gen-1")
        assert first.status_code == again.status_code == 201 and isinstance(again.parsed, Encounter)
        assert again.headers["Idempotent-Replayed"] == "true" and again.parsed.id == first.parsed.id == body.id
        retried_later = create_encounter.sync_detailed(entry.episode_id, client=coach, body=body,
                                                       idempotency_key="gen-2")
        assert retried_later.status_code == 200 and retried_later.parsed.id == body.id

        read = get_patient.sync_detailed(entry.patient_id, client=coach)
        assert isinstance(read.parsed, Patient) and read.headers["ETag"]
        later = Patient.from_dict({**read.parsed.to_dict(), "added_in_1_99": {"a": 1}})  # additive change
        assert later.id == entry.patient_id and later.additional_properties == {"added_in_1_99": {"a": 1}}
        stale = update_patient.sync_detailed(entry.patient_id, client=coach, body=PatientUpdate(language="es"),
                                             if_match='"999"')
        assert stale.status_code == 412 and isinstance(stale.parsed, Problem)
        assert stale.parsed.type_ == "precondition-failed" and isinstance(stale.parsed.current, Patient)
        assert stale.parsed.current.id == entry.patient_id and stale.headers["ETag"] == read.headers["ETag"]

        refused = send_message.sync_detailed(entry.patient_id, client=coach, body=MessageCreate(
            body="Hi", template_id=uuid.uuid4()))
        assert refused.status_code == 422 and isinstance(refused.parsed, Problem)
        assert refused.parsed.type_ == "validation-error" and refused.parsed.request_id
        assert refused.parsed.errors.additional_properties == {"": ["Give either `body` or `template_id`."]}
        missing = get_patient.sync_detailed(uuid.uuid4(), client=coach)
        assert missing.status_code == 404 and missing.parsed.type_ == "not-found"
