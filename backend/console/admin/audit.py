"""The audit trail: events newest first, filtered by patient id, user, action and time, a page
at a time — `backend.audit.service.list_events`, as `GET /api/v1/audit-events` calls it (so the
look is itself on the trail) — and the chain check, `verify_chain`, as `flask audit verify` runs it.

The filter is a GET form of ids only: a patient's id, a user chosen by name but sent by id,
times in the hospital's zone. No name or other patient data ever reaches the URL.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import request

from backend.audit import service as audit
from backend.audit.outbox import reads_the_trail
from backend.audit.schemas import AuditQuerySchema
from backend.auth.access import allow
from backend.auth.models import Role, User
from backend.console import bp, forms
from backend.console.views import page
from backend.errors import Problem
from backend.extensions import db

FILTERS = ("patient_id", "actor_id", "action", "since", "until")
PAGE_SIZE = 50


def _people() -> list[tuple[str, str]]:
    """Everyone who can act, for the user filter: (id, how they read) — the id is what is sent."""
    rows = db.session.execute(sa.select(User.id, User.display_name, User.username)
                              .order_by(User.display_name, User.username)).all()
    return [(str(user_id), f"{name} ({username})") for user_id, name, username in rows]


@bp.route("/audit")
@allow(Role.ADMIN)
@reads_the_trail  # on SQLite the audit outbox's events are copied into the trail first
def audit_trail():
    return _trail_page()


def _trail_page(status: int = 200, **context):
    form = {name: request.args.get(name, "").strip() for name in FILTERS}
    data = {**{name: form[name] for name in ("patient_id", "actor_id", "action") if form[name]},
            **{name: forms.timestamp(form[name]) for name in ("since", "until") if form[name]},
            "limit": PAGE_SIZE}
    if request.args.get("cursor"):
        data["cursor"] = request.args["cursor"]
    events, next_cursor, errors = [], None, None
    try:
        query = forms.load(AuditQuerySchema(), data)
        cursor, limit = query.pop("cursor"), query.pop("limit")
        events, next_cursor = audit.list_events(**query, cursor=cursor, limit=limit)
    except forms.FormErrors as invalid:
        status, errors = 422, invalid.errors
    except Problem as problem:  # a cursor this server did not issue
        status, errors = problem.code, {"_form": [problem.description]}
    filtered = {name: value for name, value in form.items() if value}
    return page("admin_audit.html", status, events=events, next_cursor=next_cursor, form=form, filtered=filtered,
                errors=errors, people=_people(), zone=forms.zone().key, first_page=not request.args.get("cursor"),
                **context)


@bp.route("/audit/chain-check", methods=["POST"])
@allow(Role.ADMIN)
def check_chain():
    """The chain check of `flask audit verify` (without anchors: those live in the clock's log)."""
    result = audit.verify_chain()
    audit.record("audit.verify", details={"checked": result.checked, "head_seq": result.head_seq,
                                          "intact": result.problem is None})
    return _trail_page(chain=result)
