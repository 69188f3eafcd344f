"""The admin's console in a real browser (Debian's chromium through Playwright, on the
Procfile's `release` and `web`), by visible labels: users, programs, templates and the audit
trail, each result checked through the API, axe-core on every page reached."""

from __future__ import annotations

import pytest
import requests

from tests.console.test_browser import Accessibility, chromium, page  # noqa: F401 - fixtures
from tests.test_procfile import PROCFILE, create_admin, env, run, token_for, web  # noqa: F401 - env: a fixture

pytestmark = pytest.mark.once  # no particular database: with the SQLite suite only

ADMIN = ("admin.rivera", "a long admin passphrase")


@pytest.fixture
def service(env):  # noqa: F811 - the imported fixture
    assert run(PROCFILE["release"], env).returncode == 0
    create_admin(env, *ADMIN)
    with web(env) as base:
        yield base


def heading(page) -> str:  # noqa: F811 - a page, not the fixture
    return page.get_by_role("heading", level=1).inner_text()


def shown(locator) -> bool:
    """Whether the answer shows `locator`, once it is there: an answer is a new page, which a busy
    machine may not have loaded when the click returns."""
    locator.wait_for()
    return locator.is_visible()


def test_an_admin_is_refused_a_revealing_template_with_its_words_then_saves_a_good_one(service, page):  # noqa: F811
    axe = Accessibility()
    page.goto(f"{service}/console/")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()
    assert heading(page) == "Users"
    axe.check(page)

    page.get_by_role("link", name="Templates").click()
    assert heading(page) == "Templates"
    axe.check(page)
    page.get_by_label("Name").fill("check_in")
    page.get_by_label("Text").fill("Hi {first_name}, how is your recovery going? Call {callback_phone}.")
    page.get_by_role("button", name="Save template").click()
    assert heading(page) == "Templates"
    assert page.get_by_role("alert").inner_text().startswith("Not saved: the text would reveal the service")
    assert page.locator("#body-error").inner_text() == "Reveals the service: recovery."
    assert page.get_by_role("row", name="English words").get_by_text("recovery").is_visible()
    axe.check(page)
    assert page.get_by_label("Name").input_value() == "check_in"  # the input kept

    page.get_by_label("Text").fill("Hi {first_name}, it's {coach_name}. How are you? Call {callback_phone}.")
    page.get_by_label("Language").fill("en")
    page.get_by_role("button", name="Save template").click()
    assert shown(page.get_by_role("status").get_by_text("Saved the template “check_in” in English."))
    axe.check(page)

    token = token_for(service, *ADMIN)
    templates = requests.get(f"{service}/api/v1/message-templates", headers=token, timeout=10).json()["items"]
    assert [(t["name"], t["language"], t["body"], t["segments"]) for t in templates] == [
        ("check_in", "en", "Hi {first_name}, it's {coach_name}. How are you? Call {callback_phone}.", 1)]
    assert axe.problems == []


def test_an_admin_makes_a_nurse_whose_access_waits_adds_a_program_and_checks_the_chain(service, page):  # noqa: F811
    axe = Accessibility()
    page.goto(f"{service}/console/sign-in")
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Sign in").click()

    page.get_by_label("Username").fill("nurse.okafor")
    page.get_by_label("Display name").fill("Ada Okafor")
    page.get_by_label("Role").select_option(label="ED nurse")
    page.get_by_label("Initial password").fill("a long nurse passphrase")
    page.get_by_role("button", name="Create user").click()
    assert heading(page) == "Ada Okafor (nurse.okafor)"
    assert page.get_by_text("Access pending.").is_visible()
    axe.check(page)
    page.get_by_role("link", name="Users", exact=True).first.click()
    assert shown(page.get_by_role("region", name="Clinical access waiting for approval").get_by_role(
        "link", name="Ada Okafor"))
    axe.check(page)

    page.get_by_role("link", name="Programs").click()
    assert heading(page) == "Programs"
    axe.check(page)
    page.get_by_role("link", name="Add a program").click()
    page.get_by_label("Name").fill("Harbor Street OTP")
    page.get_by_label("Service").select_option(label="Opioid treatment program (OTP)")
    page.get_by_label("Phone").fill("(617) 555-0142")
    axe.check(page)
    page.get_by_role("button", name="Add program").click()
    assert shown(page.get_by_role("link", name="Harbor Street OTP"))

    page.get_by_role("link", name="Audit trail").click()
    assert heading(page) == "Audit trail"
    axe.check(page)
    page.get_by_label("User").select_option(label="Ada Okafor (nurse.okafor)")
    page.get_by_role("button", name="Show events").click()
    assert "actor_id=" in page.url and "Ada" not in page.url
    page.get_by_role("button", name="Check the chain").click()
    assert shown(page.get_by_role("status").get_by_text("Audit trail intact:"))
    axe.check(page)

    token = token_for(service, *ADMIN)
    users = requests.get(f"{service}/api/v1/users", headers=token, timeout=10).json()["items"]
    assert [(u["username"], u["role"], u["access"]) for u in users if u["username"] == "nurse.okafor"] == [
        ("nurse.okafor", "ed_nurse", "pending")]
    programs = requests.get(f"{service}/api/v1/programs", headers=token, timeout=10).json()["items"]
    assert [(p["name"], p["service"], p["phone"]) for p in programs] == [("Harbor Street OTP", "otp", "+16175550142")]
    assert axe.problems == []
