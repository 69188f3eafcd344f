"""A console client: a browser-like test client that signs in by the form and posts forms with
the page's CSRF token, as a person's browser does."""

from __future__ import annotations

import re

import pytest

from backend.auth.models import Role
from tests.support import make_user

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class ConsoleClient:
    def __init__(self, client, user=None) -> None:
        self.client = client
        self.user = user
        self.csrf = ""

    def get(self, path: str, **kwargs):
        response = self.client.get(path, **kwargs)
        self._keep_token(response)
        return response

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        form = {**(data or {}), **({"csrf_token": self.csrf} if csrf else {})}
        response = self.client.post(path, data=form, **kwargs)
        self._keep_token(response)
        return response

    def sign_in(self, username: str, password: str, next_path: str | None = None):
        self.get("/console/sign-in")
        return self.post("/console/sign-in", {"username": username, "password": password,
                                              **({"next": next_path} if next_path else {})})

    def _keep_token(self, response) -> None:
        if response.mimetype == "text/html":
            found = _CSRF.search(response.get_data(as_text=True))
            if found:
                self.csrf = found.group(1)


@pytest.fixture
def console(app):
    """`console(role)` → a ConsoleClient signed in as a new user with that role."""

    def factory(role: Role | str = Role.ED_NURSE) -> ConsoleClient:
        user = make_user(app, role=Role(role))
        browser = ConsoleClient(app.test_client(), user)
        response = browser.sign_in(user.username, user.password)
        assert response.status_code == 302, response.get_data(as_text=True)
        browser.get("/console/", follow_redirects=True)  # a page with a token of the new session
        return browser

    return factory


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Mark a test whose body failed, so the browser fixture keeps its screenshot and HTML."""
    report = yield
    if report.when == "call" and report.failed:
        item.failed_call = True
    return report
