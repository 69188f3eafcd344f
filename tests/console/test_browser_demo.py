"""The demo as a newcomer sees it: after `demo seed`, clinic staff sign in to a lively Review
dashboard. Its screenshot is kept in `test-artifacts/console/review-demo.png`; the README's
picture (`docs/console-review.png`) is a copy of it."""

from __future__ import annotations

import re

import pytest

from tests.console.test_browser import ARTIFACTS, Accessibility, chromium, page  # noqa: F401 - fixtures
from tests.test_procfile import PROCFILE, env, run, web  # noqa: F401 - env: a fixture

pytestmark = pytest.mark.once  # no particular database: with the SQLite suite only


@pytest.fixture
def demo(env):  # noqa: F811 - the imported fixture
    assert run(PROCFILE["release"], env).returncode == 0
    assert run("flask --app backend demo seed", env).returncode == 0
    with web(env) as base:
        yield base


def test_the_demo_clinic_account_lands_on_a_lively_review_dashboard(demo, page):  # noqa: F811
    page.goto(f"{demo}/console/")
    page.get_by_label("Username").fill("clinic.riley")
    page.get_by_label("Password").fill("demo-clinic-pass")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Review"
    figures = page.locator(".tally strong").all_inner_texts()
    assert len(figures) >= 5 and sum(int(re.sub(r"\D", "", f) or 0) for f in figures) > 0  # something to do
    assert page.get_by_role("button", name="Accept").count() > 0  # handoffs waiting
    axe = Accessibility()
    axe.check(page)
    assert axe.problems == []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review-demo.png"))
