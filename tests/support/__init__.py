"""Helpers for tests: users made through the service, a JSON client that signs in, log capture and
statement counting."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import logging
import uuid

import sqlalchemy as sa

from backend import unit_of_work
from backend.auth import service as auth_service
from backend.auth.models import Role
from backend.logs import JsonFormatter, RequestIdFilter

DEFAULT_PASSWORD = "correct horse battery staple"


@dataclasses.dataclass
class MadeUser:
    id: uuid.UUID
    username: str
    password: str
    role: Role


def make_user(app, *, role: Role = Role.COACH, username: str | None = None,
              password: str = DEFAULT_PASSWORD, display_name: str = "Test Person") -> MadeUser:
    username = username or f"{role.value}.{uuid.uuid4().hex[:8]}"
    with app.app_context():
        user = auth_service.create_user(username=username, display_name=display_name, role=role,
                                        password=password)
        unit_of_work.commit()
        return MadeUser(id=user.id, username=user.username, password=password, role=user.role)


class ApiClient:
    """A Flask test client that speaks JSON and carries a bearer token once signed in."""

    def __init__(self, client, token: str | None = None) -> None:
        self.client = client
        self.token = token
        self.user: MadeUser | None = None

    def sign_in(self, username: str, password: str, device_name: str = "test device"):
        response = self.client.post("/api/v1/auth/tokens", json={
            "username": username, "password": password, "device_name": device_name})
        assert response.status_code == 201, response.get_json()
        self.token = response.get_json()["token"]
        return response

    def request(self, method: str, path: str, *, json=None, headers=None, **kwargs):
        headers = dict(headers or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open(path, method=method, json=json, headers=headers, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, json=None, **kwargs):
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path, json=None, **kwargs):
        return self.request("PATCH", path, json=json, **kwargs)

    def put(self, path, json=None, **kwargs):
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


class JsonLogCapture:
    def __init__(self) -> None:
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(JsonFormatter())
        self.handler.addFilter(RequestIdFilter())

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict]:
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]


@contextlib.contextmanager
def counted_statements(engine):
    """The SQL statements the block sends, first line of each."""
    statements: list[str] = []

    def count_one(_conn, _cursor, statement, *_args):
        statements.append(statement.strip().split("\n")[0][:100])

    sa.event.listen(engine, "before_cursor_execute", count_one)
    try:
        yield statements
    finally:
        sa.event.remove(engine, "before_cursor_execute", count_one)
