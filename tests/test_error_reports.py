"""Error reports (`SENTRY_DSN`): the real sentry-sdk posts its envelope to a fake Sentry on
127.0.0.1, and what arrives names the failure and the request id — never patient data."""

from __future__ import annotations

import pytest
import sentry_sdk
from flask import request

from backend import create_app, error_reports
from backend.auth.access import public
from backend.clock import run_job
from backend.config import TestConfig
from tests.support.fake_sentry import FakeSentry

#: What a request about a patient carries; none of it may reach an error report.
NAME, PHONE, MRN, BIRTH_DATE = "Zebulon Quillfeather", "+16175550199", "MRN-7Q4X9Z", "1971-03-14"
DEVICE_TOKEN = "device-token-never-reported-4242"
SECRETS = (NAME, "Zebulon", "Quillfeather", PHONE, "6175550199", MRN, BIRTH_DATE, DEVICE_TOKEN)


@pytest.fixture
def fake_sentry():
    fake = FakeSentry()
    yield fake
    fake.stop()


@pytest.fixture
def reporting_app(fake_sentry, tmp_path):
    config = TestConfig(f"sqlite:///{tmp_path}/reports.db")  # never opened: the failure comes first
    config.SENTRY_DSN = fake_sentry.dsn
    app = create_app(config)

    @public
    def boom():  # fails quoting the row, as a database driver's message does
        patient = request.get_json()
        raise RuntimeError(f"row ({patient['name']}, {patient['phone']}, {patient['mrn']}) failed a check")

    app.add_url_rule("/_test/boom", view_func=boom, methods=["POST"])
    yield app
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.get_global_scope().set_client(None)


def test_reporting_is_off_without_a_dsn():
    assert error_reports.init({"SENTRY_DSN": ""}) is False
    assert not sentry_sdk.get_client().is_active()


def test_an_unexpected_error_is_reported_with_its_type_and_request_id_and_no_patient_data(reporting_app,
                                                                                          fake_sentry):
    response = reporting_app.test_client().post(
        f"/_test/boom?q={NAME}&mrn={MRN}",
        json={"name": NAME, "phone": PHONE, "mrn": MRN, "birth_date": BIRTH_DATE},
        headers={"X-Request-Id": "report-me-7", "Authorization": f"Bearer {DEVICE_TOKEN}",
                 "X-Patient": f"{NAME} {PHONE}", "Cookie": f"patient={MRN}"})
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)

    [event] = fake_sentry.events()
    [exception] = event["exception"]["values"]
    assert exception["type"] == "RuntimeError" and "value" not in exception
    assert "boom" in [frame["function"] for frame in exception["stacktrace"]["frames"]]
    assert event["tags"] == {"request_id": "report-me-7", "route": "/_test/boom"}
    assert event["request"] == {"method": "POST"}
    assert response.get_json()["request_id"] == "report-me-7"  # what the caller quotes finds the report
    received = fake_sentry.text()
    assert [secret for secret in SECRETS if secret in received] == []


def test_a_failed_clock_job_is_reported_without_its_message(reporting_app, fake_sentry):
    def send_reminders():
        raise ValueError(f"no phone for {NAME}, MRN {MRN}")

    run_job(reporting_app, send_reminders)
    sentry_sdk.flush(timeout=5)

    [event] = fake_sentry.events()
    assert [value["type"] for value in event["exception"]["values"]] == ["ValueError"]
    assert event["logentry"] == {"message": "scheduled job failed"}
    assert "request_id" not in event["tags"]
    received = fake_sentry.text()
    assert [secret for secret in SECRETS if secret in received] == []
