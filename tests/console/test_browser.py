"""The console in a real browser (Debian's chromium, driven by Playwright), on the service as it
is deployed (the Procfile's `release` and `web`), by the visible labels of console.md.

Each journey checks its result through the API, not only on the page, and every page it
reaches is checked with axe-core: no serious or critical violation. On a failure the page's
screenshot and HTML are kept under `test-artifacts/console/` (README "Staff console").
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import requests

from tests.support.binaries import system_binary
from tests.test_procfile import PROCFILE, create_admin, env, run, token_for, web  # noqa: F401 - env: a fixture

pytestmark = pytest.mark.once  # no particular database: with the SQLite suite only

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
NURSE = ("nurse.lopez", "a long nurse passphrase")
MRN = "MRN-B-20931"


@pytest.fixture(scope="module")
def chromium():
    executable = system_binary("/usr/bin/chromium", "chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def service(env):  # noqa: F811 - the imported fixture
    assert run(PROCFILE["release"], env).returncode == 0
    create_admin(env, *NURSE, role="ed_nurse")
    with web(env) as base:
        yield base


@pytest.fixture
def page(chromium, request):
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    yield page
    if getattr(request.node, "failed_call", False):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = request.node.name
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        (ARTIFACTS / f"{name}.html").write_text(page.content())
    context.close()


class Accessibility:
    """axe-core on every page a journey reaches."""

    def __init__(self) -> None:
        from axe_playwright_python.sync_playwright import Axe

        self.axe = Axe()
        self.problems: list[str] = []

    def check(self, page) -> None:
        for violation in self.axe.run(page).response["violations"]:
            if violation["impact"] in ("serious", "critical"):
                self.problems.append(f"{page.url}: {violation['id']} ({violation['impact']})")


def local(hours_ago: float) -> str:
    zone = ZoneInfo("America/New_York")  # the hospital's zone (DEFAULT_TIMEZONE's default)
    return (dt.datetime.now(zone) - dt.timedelta(hours=hours_ago)).strftime("%Y-%m-%dT%H:%M")


def test_the_ed_nurse_registers_opens_discharges_and_hands_off_in_the_browser(service, page):
    axe = Accessibility()
    started = time.monotonic()
    page.goto(f"{service}/console/")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    axe.check(page)
    page.get_by_label("Username").fill(NURSE[0])
    page.get_by_label("Password").fill(NURSE[1])
    page.get_by_role("button", name="Sign in").click()

    page.get_by_label("MRN").fill(MRN)
    axe.check(page)
    page.get_by_role("button", name="Find patient").click()
    page.get_by_label("Given name").fill("Marisol")
    page.get_by_label("Family name").fill("Quintanilla")
    page.get_by_label("Date of birth").fill("1987-05-09")
    page.get_by_label("Mobile phone").fill("(617) 555-0199")
    axe.check(page)
    page.get_by_role("button", name="Register patient").click()

    page.get_by_label("Arrived at").fill(local(5))
    page.get_by_label("Presenting reason").select_option(label="Overdose")
    axe.check(page)
    page.get_by_role("button", name="Open episode").click()

    page.get_by_label("Discharged at").fill(local(1))
    axe.check(page)
    page.get_by_role("button", name="Record discharge").click()
    page.get_by_label("To").select_option(label="Transition clinic")
    page.get_by_label("Method").select_option(label="Warm handoff, in person")
    page.get_by_label("Medication for OUD").select_option(label="Buprenorphine")
    page.get_by_label("Naloxone given").check()
    page.get_by_role("button", name="Send handoff").click()
    page.get_by_text(re.compile(r"To transition clinic .* sent")).wait_for()
    took = time.monotonic() - started
    axe.check(page)

    episode_id = page.url.rsplit("/", 1)[1]
    token = token_for(service, *NURSE)
    handoffs = requests.get(f"{service}/api/v1/handoffs", params={"episode_id": episode_id}, headers=token,
                            timeout=10).json()["items"]
    assert [(h["to_level"], h["status"], h["summary"]["moud"], h["summary"]["naloxone_given"]) for h in handoffs] \
        == [("transition_clinic", "sent", "buprenorphine", True)]  # `Naloxone given` recorded the usual kit
    kits = requests.get(f"{service}/api/v1/episodes/{episode_id}/naloxone", headers=token, timeout=10).json()["items"]
    assert [(k["kind"], k["recipient"], k["product"], k["doses"]) for k in kits] == [
        ("given", "patient", "nasal_4mg", 2)]
    episode = requests.get(f"{service}/api/v1/episodes/{episode_id}", headers=token, timeout=10).json()
    assert episode["discharged_at"] is not None and episode["patient_display_name"] == "Marisol Quintanilla"
    assert axe.problems == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.json").write_text(json.dumps({"ed_nurse_journey_seconds": round(took, 2)}))


def test_signing_out_ends_the_session_in_the_browser(service, page):
    page.goto(f"{service}/console/sign-in")
    page.get_by_label("Username").fill(NURSE[0])
    page.get_by_label("Password").fill(NURSE[1])
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"
    assert page.get_by_text("You are signed out.").is_visible()
    page.goto(f"{service}/console/patients/find")
    assert page.get_by_role("heading", level=1).inner_text() == "Sign in"  # the session is over
