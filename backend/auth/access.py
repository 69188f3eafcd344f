"""Who may call what: one declarative rule per view, checked before the view runs.

Every view declares its rule with `@allow(role, …)`, `@signed_in` or `@public`; a view without
one fails closed (and a test walks every endpoint to make sure none is missing). Which records
a user may see is declared per kind of record as a `Scope`; outside it, 404 and an audit event.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

import sqlalchemy as sa
from flask import current_app, g, request

from backend.audit import service as audit
from backend.auth import service as auth_service
from backend.auth.models import PEOPLE, Access, DeviceSession, Role, User
from backend.errors import Problem
from backend.extensions import db

T = TypeVar("T")
PUBLIC = "public"
_ATTR = "_bridgeline_access"
_PENDING_OK = "_bridgeline_open_while_pending"


def allow(*roles: Role) -> Callable:
    """Only signed-in users with one of `roles` may call the view; others get 403."""
    rule = frozenset(Role(r) for r in roles)

    def decorate(view):
        setattr(view, _ATTR, rule)
        _document(view, rule)
        return view

    return decorate


def signed_in(view):
    """Any signed-in person may call the view (every role but `interface`, the hospital feed's
    service account, which may reach only its own endpoint)."""
    setattr(view, _ATTR, PEOPLE)
    _document(view, PEOPLE)
    return view


def _document(view, rule: frozenset) -> None:
    """Put the rule in the OpenAPI operation (`x-roles`, and the 403 when some roles are
    refused) through flask-smorest's manual doc, which its decorators carry along."""
    doc = view.__dict__.setdefault("_apidoc", {}).setdefault("manual_doc", {})
    doc["x-roles"] = sorted(str(r) for r in rule)
    if rule != frozenset(Role):
        doc.setdefault("responses", {})["403"] = "FORBIDDEN"


def open_while_pending(view):
    """The view serves no patient data (the user's own account and devices, the programs
    directory, templates): a person whose clinical access awaits approval may call it. Every
    other view answers them 403 `access-pending` (fail closed)."""
    setattr(view, _PENDING_OK, True)
    return view


def public(view):
    """No sign-in needed (health probes, sign-in itself, webhooks with their own checks)."""
    setattr(view, _ATTR, PUBLIC)
    return view


def _handler(endpoint: str, method: str):
    """The function serving `method` on `endpoint` (a MethodView's method, or the view)."""
    view = current_app.view_functions[endpoint]
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        view = handler if handler is not None else view
    return view


def rule_for(endpoint: str, method: str):
    """The declared rule of the handler serving `method` on `endpoint`, or None."""
    if endpoint.startswith("api-docs."):  # flask-smorest serves the OpenAPI document
        return PUBLIC
    if endpoint.endswith(".static"):  # the console's stylesheet and scripts
        return PUBLIC
    return getattr(_handler(endpoint, method), _ATTR, None)


def enforce() -> None:
    """Authenticate the bearer token and apply the view's rule (called for every request)."""
    g.user = None
    g.device_session = None
    if request.method == "OPTIONS" and getattr(request.url_rule, "provide_automatic_options", False):
        return  # Flask answers with the Allow header; no view runs
    rule = rule_for(request.endpoint, request.method)
    if rule is None:
        raise RuntimeError(f"{request.endpoint} declares no access rule")
    if rule == PUBLIC:
        return
    session = _AUTHENTICATORS.get(request.blueprint, _authenticate)()
    g.device_session, g.user = session, session.user
    # Plain, for the request log: reading g.user after the commit would reload it from the database.
    g.user_id = session.user.id
    if session.user.role not in rule:
        raise Problem(403, f"The {session.user.role} role may not take this action.")
    if session.user.access == Access.PENDING and not getattr(_handler(request.endpoint, request.method),
                                                             _PENDING_OK, False):
        raise Problem(403, "Your clinical access is waiting for a clinic-staff member's approval (two people "
                           "grant clinical access).", type="access-pending")


#: How a blueprint's requests are authenticated when not by bearer token (the console: its cookie).
_AUTHENTICATORS: dict[str | None, Callable[[], DeviceSession]] = {}


def authenticate_with(blueprint: str, authenticator: Callable[[], DeviceSession]) -> None:
    """Authenticate `blueprint`'s requests with `authenticator` (which raises when there is no
    valid session). Every other request — the whole JSON API — keeps bearer tokens only."""
    _AUTHENTICATORS[blueprint] = authenticator


def _authenticate() -> DeviceSession:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    session = auth_service.session_for_token(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
    if session is None:
        raise Problem(401, "Sign in: send a valid bearer token in the Authorization header; "
                           "missing, expired and revoked tokens are refused.",
                      headers={"WWW-Authenticate": 'Bearer realm="bridgeline"'})
    return session


def current_user() -> User:
    return g.user


def current_session() -> DeviceSession:
    return g.device_session


@dataclasses.dataclass(frozen=True)
class Scope(Generic[T]):
    """Which records of one kind a user may see, declared once as a SQL condition.

    The same rule serves lists (`where`) and single records (`load_or_404`), so the two can
    never disagree. Domains declare their scopes (e.g. a coach sees episodes they coach);
    a record outside the scope answers 404 like one that does not exist (privacy.md: do not
    confirm it), and the attempt is audited with the patient it would have revealed.
    """

    model: type[T]
    resource_type: str
    #: The condition a row must meet to be visible to `user`.
    visible_to: Callable[[User], sa.ColumnElement[bool]]
    #: The patients a record belongs to, for the audit trail.
    patient_ids: Callable[[T], Iterable[uuid.UUID]] = lambda record: ()

    def where(self, stmt: sa.Select, user: User | None = None) -> sa.Select:
        """Restrict a list query to what the user may see."""
        return stmt.where(self.visible_to(user or current_user()))

    def load_or_404(self, record_id: uuid.UUID, user: User | None = None, *, lock: bool = False) -> T:
        """The record if the user may see it. `lock` takes its row lock until commit, so
        that state changes (discharge, close…) on one record happen one after the other."""
        user = user or current_user()
        stmt = sa.select(self.model).where(self.model.id == record_id, self.visible_to(user))
        if lock:
            stmt = stmt.with_for_update(of=self.model).execution_options(populate_existing=True)
        record = db.session.scalar(stmt)
        if record is not None:
            return record
        hidden = db.session.get(self.model, record_id)
        audit.record("access.denied", resource_type=self.resource_type, resource_id=record_id,
                     patient_ids=self.patient_ids(hidden) if hidden is not None else ())
        raise Problem(404, f"No {self.resource_type.replace('_', ' ')} {record_id} that you may see.")
