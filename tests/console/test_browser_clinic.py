"""The clinic's journey in a real browser (Debian's chromium, driven by Playwright), on the
service as it is deployed, by the visible labels of console.md: clinic staff approve a new
coach's access on the Review, accept a handoff from the queue in one click, and assign the coach
on the episode page. Each result is checked through the API; every page reached is checked with
axe-core (no serious or critical violation). Screenshots of the pages are kept under
`test-artifacts/console/` (README "Staff console")."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest
import requests

from tests.console.test_browser import ARTIFACTS, Accessibility, chromium, page  # noqa: F401 - fixtures
from tests.test_procfile import PROCFILE, create_admin, env, run, token_for, web  # noqa: F401 - env: a fixture

pytestmark = pytest.mark.once  # no particular database: with the SQLite suite only

NURSE = ("nurse.okafor", "a long nurse passphrase")
CLINIC = ("clinic.baptiste", "a long clinic passphrase")
ADMIN = ("admin.root", "a long admin passphrase")
COACH = "Dana Whitfield"
COACH_PASSWORD = "a long coach passphrase"


def ago(**kwargs) -> str:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(**kwargs)).isoformat()


@pytest.fixture
def service(env):  # noqa: F811 - the imported fixture
    assert run(PROCFILE["release"], env).returncode == 0
    create_admin(env, *NURSE, role="ed_nurse")
    create_admin(env, *CLINIC, role="clinic_staff")
    create_admin(env, *ADMIN, role="admin")
    with web(env) as base:
        yield base


def _arrival_from_the_ed(base: str) -> tuple[str, str]:
    """An ED nurse's patient, discharged 30 h ago and handed off to the clinic (through the API)."""
    nurse = token_for(base, *NURSE)
    post = lambda path, body: requests.post(f"{base}/api/v1{path}", json=body, headers=nurse, timeout=10)  # noqa: E731
    patient = post("/patients", {"mrn": "MRN-K-55120", "given_name": "Marisol", "family_name": "Quintanilla",
                                 "birth_date": "1987-05-09"}).json()
    episode = post("/episodes", {"patient_id": patient["id"], "level": "emergency_department",
                                 "presenting_reason": "overdose", "arrived_at": ago(hours=36)}).json()
    assert post(f"/episodes/{episode['id']}/discharge", {"discharged_at": ago(hours=30)}).status_code == 200
    handoff = post("/handoffs", {"episode_id": episode["id"], "to_level": "transition_clinic",
                                 "method": "warm_phone", "summary": {"moud": "buprenorphine", "naloxone_given": True}})
    assert handoff.status_code == 201, handoff.text
    return episode["id"], handoff.json()["id"]


def _new_coach(base: str) -> str:
    """A coach an admin adds: pending until a clinic-staff member approves."""
    admin = token_for(base, *ADMIN)
    created = requests.post(f"{base}/api/v1/users", headers=admin, timeout=10, json={
        "username": "dana.whitfield", "display_name": COACH, "role": "coach", "password": COACH_PASSWORD})
    assert created.status_code == 201 and created.json()["access"] == "pending", created.text
    return created.json()["id"]


def shot(page, name: str) -> None:  # noqa: F811 - the page fixture
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"clinic-{name}.png"), full_page=True)


def test_clinic_staff_approve_a_coach_accept_a_handoff_and_assign_the_coach_in_the_browser(service, page):  # noqa: F811
    episode_id, handoff_id = _arrival_from_the_ed(service)
    coach_id = _new_coach(service)
    axe = Accessibility()
    page.goto(f"{service}/console/")
    page.get_by_label("Username").fill(CLINIC[0])
    page.get_by_label("Password").fill(CLINIC[1])
    page.get_by_role("button", name="Sign in").click()

    assert page.get_by_role("heading", level=1).inner_text() == "Review"
    axe.check(page)
    shot(page, "review")
    started = time.monotonic()
    page.get_by_role("row", name=COACH).get_by_role("button", name="Approve access").click()
    page.get_by_text("Access approved.").wait_for()

    page.get_by_role("link", name="Handoffs", exact=True).click()
    assert page.get_by_role("heading", level=1).inner_text() == "Handoffs"
    axe.check(page)
    shot(page, "handoffs")
    card = page.get_by_role("article", name="Marisol Quintanilla")
    card.get_by_role("button", name="Accept").click()  # accepting a handoff: one click
    page.get_by_text("Handoff: Accept recorded.").wait_for()
    card = page.get_by_role("article", name="Marisol Quintanilla")
    assert card.get_by_role("button", name="Complete").is_visible()
    assert card.get_by_role("button", name="Accept").count() == 0  # only the steps its status allows
    axe.check(page)

    page.goto(f"{service}/console/review/not-contacted")  # a whole list (linked as `All N` past 25)
    assert page.get_by_role("heading", level=1).inner_text() == "Not contacted within 24 h of discharge"
    assert page.get_by_role("link", name="Marisol Quintanilla").is_visible()
    axe.check(page)
    page.get_by_role("link", name="Back to the Review").click()
    at_risk = page.get_by_role("table").filter(has_text="Discharged").first
    at_risk.get_by_role("link", name="Marisol Quintanilla").click()  # the dashboard to the episode: one click
    assert page.url.endswith(f"/console/episodes/{episode_id}")
    axe.check(page)
    page.get_by_label("Coach", exact=True).select_option(label=COACH)
    page.get_by_role("button", name="Assign coach").click()
    page.get_by_text("Coach assigned.").wait_for()
    took = time.monotonic() - started
    axe.check(page)
    shot(page, "episode")
    page.get_by_role("link", name="Review", exact=True).click()
    assert page.get_by_role("table", name="Each coach's open episodes").get_by_role("row", name=COACH) \
        .get_by_role("cell").first.inner_text() == "1"  # the coach's load, counted
    shot(page, "review-after")

    # The coach, at a desk for once: their own caseload, the episode, a contact logged.
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Username").fill("dana.whitfield")
    page.get_by_label("Password").fill(COACH_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("heading", level=1).inner_text() == "My caseload"
    axe.check(page)
    page.get_by_role("link", name="Marisol Quintanilla").click()
    assert page.url.endswith(f"/console/episodes/{episode_id}")
    page.get_by_label("Kind of contact").select_option(label="Phone call")
    page.get_by_role("button", name="Log contact").click()
    page.get_by_text("Contact logged.").wait_for()
    axe.check(page)
    shot(page, "coach-episode")

    clinic = token_for(service, *CLINIC)
    handoff = requests.get(f"{service}/api/v1/handoffs/{handoff_id}", headers=clinic, timeout=10).json()
    assert handoff["status"] == "accepted"
    episode = requests.get(f"{service}/api/v1/episodes/{episode_id}", headers=clinic, timeout=10).json()
    assert episode["coach_id"] == coach_id
    admin = token_for(service, *ADMIN)
    assert requests.get(f"{service}/api/v1/users/{coach_id}", headers=admin, timeout=10).json()["access"] == "active"
    coach = token_for(service, "dana.whitfield", COACH_PASSWORD)
    contacts = requests.get(f"{service}/api/v1/episodes/{episode_id}/encounters", headers=coach, timeout=10).json()
    assert [(c["kind"], c["outcome"]) for c in contacts["items"]] == [("phone", "reached")]
    assert axe.problems == []
    timings = ARTIFACTS / "timings.json"
    recorded = json.loads(timings.read_text()) if timings.exists() else {}
    timings.write_text(json.dumps({**recorded, "clinic_journey_seconds": round(took, 2)}))
