"""Users: the list, creating an account, and each account's page — role, display name, a new
password, ending every device session, deactivating and reactivating.

The two-person rule is shown, never bypassed: a clinical role an admin gives (a new account, a
role change, a password an admin sets, an account brought back) stays "access pending" until a
clinic-staff member other than the grantee approves it (`backend.auth.service._grant`); the
list starts with the grants waiting, and each account's page says who gave what and when.
Every change goes through `backend.auth.service`, as `PATCH /api/v1/users/{id}` does.
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import flash, redirect, request, url_for

from backend.auth import service as auth_service
from backend.auth.access import allow, current_user
from backend.auth.models import TWO_PERSON_ROLES, Access, Role, User
from backend.auth.schemas import UserCreateSchema, UserUpdateSchema
from backend.auth.scopes import USERS
from backend.console import bp, forms
from backend.console.views import page, refused
from backend.errors import Problem
from backend.extensions import db

ROLE_LABELS = {Role.COACH: "Coach", Role.ED_NURSE: "ED nurse", Role.CLINIC_STAFF: "Clinic staff",
               Role.ADMIN: "Admin", Role.INTERFACE: "Interface (hospital feed)"}
#: Users on one page of the list.
PAGE_SIZE = 50
CREATE_FIELDS = ("username", "display_name", "role", "password")


def _names(user_ids) -> dict[uuid.UUID, str]:
    """Display names of the people a page names (granters, approvers), in one query."""
    ids = {user_id for user_id in user_ids if user_id is not None}
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids))).all())


@bp.route("/users")
@allow(Role.ADMIN)
def users():
    return _users_page()


def _users_page(status: int = 200, **context):
    listed, next_cursor = auth_service.list_users(role=None, active=None, cursor=request.args.get("cursor") or None,
                                                  limit=PAGE_SIZE)
    pending = auth_service.pending_access()
    context.setdefault("form", {"role": Role.COACH.value})
    return page("admin_users.html", status, users=listed, next_cursor=next_cursor, pending=pending,
                names=_names(u.access_granted_by_id for u in pending), roles=ROLE_LABELS,
                clinical=TWO_PERSON_ROLES, **context)


@bp.route("/users", methods=["POST"])
@allow(Role.ADMIN)
def create_user():
    form = {name: request.form.get(name, "") for name in CREATE_FIELDS}
    data = {name: value.strip() if name != "password" else value for name, value in form.items()}
    data = {name: value for name, value in data.items() if value}
    kept = {**form, "password": ""}  # a password is never sent back to the browser
    try:
        fields = forms.load(UserCreateSchema(), data)
        user = auth_service.create_user(**fields, actor=current_user())
    except forms.FormErrors as invalid:
        return _users_page(422, form=kept, errors=invalid.errors)
    except Problem as problem:
        refused(problem)
        return _users_page(problem.code, form=kept, errors=forms.problem_errors(problem))
    pending = " Their clinical access waits for a clinic-staff member's approval." if user.role in TWO_PERSON_ROLES \
        else ""
    flash(f"Created the account {user.username} ({ROLE_LABELS[user.role]}).{pending}")
    return redirect(url_for("console.user", user_id=user.id))


@bp.route("/users/<uuid:user_id>")
@allow(Role.ADMIN)
def user(user_id: uuid.UUID):
    return _user_page(USERS.load_or_404(user_id))


def _user_page(record: User, status: int = 200, **context):
    context.setdefault("role_form", {"role": record.role.value})
    context.setdefault("name_form", {"display_name": record.display_name})
    return page("admin_user.html", status, person=record, roles=ROLE_LABELS, clinical=TWO_PERSON_ROLES,
                devices=len(auth_service.active_sessions(user=record)), is_me=record.id == current_user().id,
                names=_names((record.access_granted_by_id, record.access_approved_by_id)), **context)


def _change(user_id: uuid.UUID, form_name: str, changes_from_form, done: str):
    """Apply one form's changes through `update_user`, as the API's PATCH does; the page again
    with the form's input kept and its messages by field when refused."""
    record = USERS.load_or_404(user_id)
    form = {key: request.form.get(key, "") for key in ("role", "display_name", "password")}
    kept = {**form, "password": ""}
    try:
        changes = forms.load(UserUpdateSchema(), changes_from_form(form))
        auth_service.update_user(user=record, changes=changes, actor=current_user())
    except forms.FormErrors as invalid:
        return _user_page(record, 422, **{f"{form_name}_form": kept, f"{form_name}_errors": invalid.errors})
    except Problem as problem:
        refused(problem)
        record = USERS.load_or_404(user_id)
        return _user_page(record, problem.code, **{f"{form_name}_form": kept,
                                                   f"{form_name}_errors": forms.problem_errors(problem)})
    flash(done(record))
    return redirect(url_for("console.user", user_id=record.id))


def _regranted(record: User) -> str:
    if record.access == Access.PENDING:
        return " Their clinical access waits for a clinic-staff member's approval; their devices were signed out."
    return " Their devices were signed out."


@bp.route("/users/<uuid:user_id>/role", methods=["POST"])
@allow(Role.ADMIN)
def change_role(user_id: uuid.UUID):
    return _change(user_id, "role", lambda form: {"role": form["role"]},
                   lambda record: f"The role is now {ROLE_LABELS[record.role]}." + _regranted(record))


@bp.route("/users/<uuid:user_id>/display-name", methods=["POST"])
@allow(Role.ADMIN)
def change_display_name(user_id: uuid.UUID):
    return _change(user_id, "name", lambda form: {"display_name": form["display_name"].strip()},
                   lambda record: "Saved the display name.")


@bp.route("/users/<uuid:user_id>/password", methods=["POST"])
@allow(Role.ADMIN)
def reset_password(user_id: uuid.UUID):
    return _change(user_id, "password", lambda form: {"password": form["password"]},
                   lambda record: "Set the new password: give it to the person in person or by phone." +
                   _regranted(record))


@bp.route("/users/<uuid:user_id>/deactivate", methods=["POST"])
@allow(Role.ADMIN)
def deactivate_user(user_id: uuid.UUID):
    return _change(user_id, "account", lambda form: {"active": False},
                   lambda record: "Deactivated: the person cannot sign in, and every device was signed out.")


@bp.route("/users/<uuid:user_id>/reactivate", methods=["POST"])
@allow(Role.ADMIN)
def reactivate_user(user_id: uuid.UUID):
    return _change(user_id, "account", lambda form: {"active": True},
                   lambda record: "Reactivated." + (" Their clinical access waits for a clinic-staff member's "
                                                    "approval." if record.access == Access.PENDING else ""))


@bp.route("/users/<uuid:user_id>/devices/end", methods=["POST"])
@allow(Role.ADMIN)
def end_devices(user_id: uuid.UUID):
    """Sign the person out everywhere (a lost phone), as `DELETE /api/v1/users/{id}/devices`."""
    record = USERS.load_or_404(user_id)
    ended = auth_service.revoke_all_sessions(user=record, reason="revoked_by_admin", actor=current_user())
    flash(f"Ended {ended} device session{'s' if ended != 1 else ''}." if ended else "No device was signed in.")
    return redirect(url_for("console.user", user_id=record.id))
