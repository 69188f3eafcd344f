"""The records pages in a real browser, on the Procfile's `web`: clinic staff record a Part 2
consent, print the accounting of disclosures, read a reply from an unknown number, look at the
texts needing review, open Outcomes and download its CSV, and revoke the consent — by the visible
labels, each result checked through the API, axe-core on every page reached.

Every page's screenshot is kept under `test-artifacts/console/records/` (and the printed
accounting as PDF), to look at them as a person would.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import io
import re
import time
from urllib.parse import urlencode

import pytest
import requests

from tests.console.test_browser import ARTIFACTS, Accessibility, chromium, local, page  # noqa: F401 - fixtures
from tests.test_procfile import (  # noqa: F401
    PROCFILE,
    create_admin,
    env,
    free_port,
    process,
    run,
    token_for,
)

pytestmark = pytest.mark.once  # no particular database: with the SQLite suite only

CLINIC = ("clinic.ortiz", "a long clinic passphrase")
ADMIN = ("root", "a long admin passphrase")
AUTH_TOKEN = "records-browser-auth-token"
ACCOUNT_SID = "AC" + "2" * 32
UNKNOWN_NUMBER = "+16175550999"
SHOTS = ARTIFACTS / "records"


@pytest.fixture
def service(env):  # noqa: F811 - the imported fixture
    """The web process with Twilio's webhook secret, so a signed reply can come in."""
    assert run(PROCFILE["release"], env).returncode == 0
    create_admin(env, *ADMIN)
    create_admin(env, *CLINIC, role="clinic_staff")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    texting = {**env, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "PUBLIC_BASE_URL": base}
    with process("web", texting, PORT=str(port)) as proc:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{base}/health", timeout=10).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("web did not start")
            time.sleep(0.2)
        yield base


def reply_from_unknown_number(base: str) -> None:
    from twilio.request_validator import RequestValidator

    form = {"MessageSid": "SM" + "7" * 32, "AccountSid": ACCOUNT_SID, "From": UNKNOWN_NUMBER,
            "To": "+16175550000", "Body": "who is this?"}
    url = f"{base}/webhooks/twilio/inbound"
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
    answer = requests.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)
    assert answer.status_code == 200, answer.text


def shoot(browser_page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser_page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_clinic_staff_record_a_consent_print_the_accounting_and_download_the_outcomes(service, page):  # noqa: F811
    api = token_for(service, *CLINIC)
    admin = token_for(service, *ADMIN)
    otp = requests.post(f"{service}/api/v1/programs", headers=admin, timeout=10, json={
        "name": "Harbor OTP", "service": "otp", "accepting_patients": True, "external": True}).json()
    patient = requests.post(f"{service}/api/v1/patients", headers=api, timeout=10, json={
        "mrn": "MRN-R-5150", "given_name": "Dana", "family_name": "Whitfield", "birth_date": "1984-11-30"}).json()
    now = dt.datetime.now(dt.UTC)
    episode = requests.post(f"{service}/api/v1/episodes", headers=api, timeout=10, json={
        "patient_id": patient["id"], "level": "emergency_department", "presenting_reason": "overdose",
        "arrived_at": (now - dt.timedelta(hours=8)).isoformat()}).json()
    requests.post(f"{service}/api/v1/episodes/{episode['id']}/discharge", headers=api, timeout=10,
                  json={"discharged_at": (now - dt.timedelta(hours=2)).isoformat()}).raise_for_status()
    reply_from_unknown_number(service)
    axe = Accessibility()

    page.goto(f"{service}/console/")
    page.get_by_label("Username").fill(CLINIC[0])
    page.get_by_label("Password").fill(CLINIC[1])
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Review"  # where clinic staff start
    page.get_by_role("link", name="Find patient").click()
    page.get_by_label("MRN").fill("MRN-R-5150")
    page.get_by_role("button", name="Find patient").click()
    page.get_by_role("link", name=re.compile(r"^Arrived ")).click()
    page.get_by_role("link", name="Consents and disclosures").click()

    # Record a Part 2 consent.
    assert page.get_by_role("heading", level=1).inner_text() == "Consents"
    axe.check(page)
    page.get_by_label("Recipient", exact=True).select_option(label="Harbor OTP (outside the program)")
    page.get_by_label("Purpose").fill("Continuity of buprenorphine treatment")
    page.get_by_label("Handoff summary").check()
    page.get_by_label("Medications").check()
    page.get_by_label("Signed at").fill(local(0.5))
    page.get_by_label("Signature method").select_option(label="Written")
    page.get_by_label("On a date").check()
    page.get_by_label("Expiry date").fill((dt.date.today() + dt.timedelta(days=365)).isoformat())
    shoot(page, "1-consent-form")
    page.get_by_role("button", name="Record consent").click()
    page.get_by_text("The consent is recorded.").wait_for()
    axe.check(page)
    shoot(page, "2-consent-recorded")
    consents = requests.get(f"{service}/api/v1/patients/{patient['id']}/consents", headers=api,
                            timeout=10).json()["items"]
    assert [(c["recipient_program_id"], c["information"], c["active"]) for c in consents] == \
        [(otp["id"], ["handoff_summary", "medications"], True)]

    # A handoff to the program is now a disclosure; the accounting shows it, to print.
    handoff = requests.post(f"{service}/api/v1/handoffs", headers=api, timeout=10, json={
        "episode_id": episode["id"], "to_level": "community_program", "to_program_id": otp["id"],
        "method": "warm_phone", "summary": {"moud": "buprenorphine", "naloxone_given": True}})
    assert handoff.status_code == 201, handoff.text
    page.get_by_role("link", name="Accounting of disclosures").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Accounting of disclosures"
    assert page.get_by_role("cell", name="Harbor OTP").is_visible()
    assert page.get_by_text("Medication for OUD").is_visible()
    assert page.get_by_text("protected by Federal confidentiality rules (42 CFR part 2)").is_visible()
    axe.check(page)
    shoot(page, "3-accounting")
    page.emulate_media(media="print")
    assert not page.get_by_role("button", name="Sign out").is_visible()  # printed without the menus
    shoot(page, "3-accounting-printed")
    page.pdf(path=str(SHOTS / "accounting.pdf"))
    page.emulate_media(media="screen")
    accounting = requests.get(f"{service}/api/v1/patients/{patient['id']}/disclosures", headers=api,
                              timeout=10).json()["items"]
    assert [(d["recipient_name"], d["consent_id"]) for d in accounting] == [("Harbor OTP", consents[0]["id"])]

    # The inbox: a reply from a number that matches no patient.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Inbox").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Inbox"
    assert page.get_by_text("Unknown number", exact=True).is_visible() and page.get_by_text("who is this?").is_visible()
    axe.check(page)
    shoot(page, "4-inbox")
    page.get_by_role("button", name=re.compile(r"^Mark read")).click()
    page.get_by_text("No unread replies.").wait_for()
    assert requests.get(f"{service}/api/v1/inbox", params={"unread": "true"}, headers=api,
                        timeout=10).json()["items"] == []

    page.get_by_role("link", name="Texts needing review").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Texts needing review"
    axe.check(page)

    # Outcomes, and the same CSV as the API's.
    page.get_by_role("link", name="Outcomes").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Outcomes"
    assert page.get_by_role("img", name=re.compile(r"^Contacted within 24 h of discharge")).is_visible()
    axe.check(page)
    shoot(page, "5-outcomes")
    query = dict(re.findall(r"(from|to)=([0-9-]+)", page.get_by_role("link", name="Download CSV")
                            .get_attribute("href")))
    with page.expect_download() as downloading:
        page.get_by_role("link", name="Download CSV").click()
    ours = downloading.value.path().read_text()
    theirs = requests.get(f"{service}/api/v1/reports/outcomes?{urlencode(query)}",
                          headers={**api, "Accept": "text/csv"}, timeout=30).text

    def rows(text: str) -> list[dict]:  # as_of: the moment each was made
        return [{k: v for k, v in row.items() if k != "as_of"} for row in csv.DictReader(io.StringIO(text))]

    assert rows(ours) == rows(theirs) and rows(ours)
    report = requests.get(f"{service}/api/v1/reports/outcomes", params=query, headers=api, timeout=30).json()
    assert report["cohort"]["episodes"] == 1

    # Revoke the consent: the next disclosure to the program is refused.
    page.goto(f"{service}/console/patients/{patient['id']}/consents")
    page.get_by_label("How revoked").select_option(label="Written")
    page.get_by_role("button", name="Revoke consent").click()
    page.get_by_text("The consent is revoked").wait_for()
    axe.check(page)
    shoot(page, "6-consent-revoked")
    cancelled = requests.post(f"{service}/api/v1/handoffs/{handoff.json()['id']}/cancel", headers=api, timeout=10,
                              json={"reason": "Wrong program"})
    assert cancelled.status_code == 200, cancelled.text
    refused = requests.post(f"{service}/api/v1/handoffs", headers=api, timeout=10, json={
        "episode_id": episode["id"], "to_level": "community_program", "to_program_id": otp["id"],
        "method": "warm_phone", "summary": {"moud": "buprenorphine", "naloxone_given": True}})
    assert refused.status_code == 409 and refused.json()["type"] == "consent-required"
    assert axe.problems == []
