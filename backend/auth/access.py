"""Who may call what: one declarative rule per view, checked before the view runs.

Every view declares its rule with `@allow(role, …)`, `@signed_in` or `@public`; a view without
one fails closed (and a test walks every endpoint to make sure none is missing). Records
outside the caller's scope answer 404 through `in_scope_or_404`, which also audits the attempt.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import TypeVar

from flask import current_app, g, request

from backend.audit import service as audit
from backend.auth import service as auth_service
from backend.auth.models import DeviceSession, Role, User
from backend.errors import Problem

T = TypeVar("T")
PUBLIC = "public"
_ATTR = "_bridgeline_access"


def allow(*roles: Role) -> Callable:
    """Only signed-in users with one of `roles` may call the view; others get 403."""
    rule = frozenset(Role(r) for r in roles)

    def decorate(view):
        setattr(view, _ATTR, rule)
        _document(view, rule)
        return view

    return decorate


def signed_in(view):
    """Any signed-in user may call the view."""
    setattr(view, _ATTR, frozenset(Role))
    _document(view, frozenset(Role))
    return view


def _document(view, rule: frozenset) -> None:
    """Put the rule in the OpenAPI operation (`x-roles`, and the 403 when some roles are
    refused) through flask-smorest's manual doc, which its decorators carry along."""
    doc = view.__dict__.setdefault("_apidoc", {}).setdefault("manual_doc", {})
    doc["x-roles"] = sorted(str(r) for r in rule)
    if rule != frozenset(Role):
        doc.setdefault("responses", {})["403"] = "FORBIDDEN"


def public(view):
    """No sign-in needed (health probes, sign-in itself, webhooks with their own checks)."""
    setattr(view, _ATTR, PUBLIC)
    return view


def rule_for(endpoint: str, method: str):
    """The declared rule of the handler serving `method` on `endpoint`, or None."""
    view = current_app.view_functions[endpoint]
    view_class = getattr(view, "view_class", None)
    if view_class is not None:
        handler = getattr(view_class, method.lower(), None)
        if handler is None and method == "HEAD":
            handler = getattr(view_class, "get", None)
        view = handler if handler is not None else view
    if endpoint.startswith("api-docs."):  # flask-smorest serves the OpenAPI document
        return PUBLIC
    return getattr(view, _ATTR, None)


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
    session = _authenticate()
    g.device_session, g.user = session, session.user
    if session.user.role not in rule:
        raise Problem(403, f"The {session.user.role} role may not take this action.")


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


def in_scope_or_404(
    record: T | None,
    visible: bool,
    *,
    resource_type: str,
    resource_id: object,
    patient_ids: Iterable[uuid.UUID] = (),
) -> T:
    """Return `record` if the caller may see it; otherwise audit the attempt and answer 404,
    the same answer as for a record that does not exist (privacy.md: do not confirm it)."""
    if record is not None and visible:
        return record
    audit.record("access.denied", resource_type=resource_type, resource_id=resource_id,
                 patient_ids=patient_ids if record is not None else ())
    raise Problem(404, f"No {resource_type.replace('_', ' ')} {resource_id} that you may see.")
