"""HTTP endpoints of identity: sign-in and out, the caller and their devices, user administration.

Each view parses, checks access, calls `backend.auth.service`, and returns; nothing else.
"""

from __future__ import annotations

import uuid

from flask import request
from flask.views import MethodView

from backend.auth import service
from backend.auth.access import (
    allow,
    current_session,
    current_user,
    open_while_pending,
    public,
    signed_in,
)
from backend.auth.models import Role
from backend.auth.schemas import (
    AccessApprovalSchema,
    DevicePageSchema,
    TokenRequestSchema,
    TokenSchema,
    UserCreateSchema,
    UserListQuerySchema,
    UserPageSchema,
    UserSchema,
    UserUpdateSchema,
)
from backend.auth.scopes import OWN_DEVICE_SESSIONS, USERS
from backend.errors import problem_response
from backend.openapi import Blueprint, problem

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Sign-in, devices and users.")


@blp.route("/auth/tokens")
class Tokens(MethodView):
    @blp.doc(operationId="signIn")
    @public
    @blp.doc(security=[])
    @blp.arguments(TokenRequestSchema)
    @blp.response(201, TokenSchema)
    @problem(blp, 401, "Unknown user or wrong password (the same answer for both).")
    @problem(blp, 429, "Too many failures for this username from this address, or from everywhere (then a "
                       "device that signed in before gets through with its `device_cookie`); see Retry-After.",
             headers={"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}})
    def post(self, body):
        """Sign in on a device and get its bearer token"""
        try:
            issued = service.sign_in(username=body["username"], password=body["password"],
                                     device_name=body["device_name"], address=request.remote_addr or "",
                                     device_cookie=body.get("device_cookie"))
        except service.SignInThrottled as throttled:
            # Answered, not raised: the unit of work must still commit the audit event.
            return problem_response(429, "Too many failed sign-ins for this username; try again later (a "
                                         "device that signed in before may send its device_cookie).",
                                    headers={"Retry-After": str(throttled.retry_after_seconds)})
        except service.InvalidCredentials:
            # Answered, not raised: the failure count and its audit event must be committed.
            return problem_response(401, "The username or password is not right.")
        session = issued.session
        return {
            "token": issued.token,
            "expires_at": session.expires_at,
            "idle_timeout_seconds": session.idle_timeout_seconds,
            "user": session.user,
            "device_cookie": issued.device_cookie,
        }


@blp.route("/auth/tokens/current")
class CurrentToken(MethodView):
    @blp.doc(operationId="signOut")
    @open_while_pending
    @signed_in
    @blp.response(204)
    def delete(self):
        """Sign out: end the session of the token used for this request"""
        service.revoke_session(session=current_session(), reason="signed_out")


@blp.route("/me")
class Me(MethodView):
    @blp.doc(operationId="getMe")
    @open_while_pending
    @signed_in
    @blp.response(200, UserSchema)
    def get(self):
        """The signed-in user"""
        return current_user()


@blp.route("/me/devices")
class MyDevices(MethodView):
    @blp.doc(operationId="listMyDevices")
    @open_while_pending
    @signed_in
    @blp.response(200, DevicePageSchema)
    def get(self):
        """My open device sessions, newest first (all of them: one page)"""
        me, this = current_user(), current_session()
        sessions = service.active_sessions(user=me)
        return {"items": [_device(s, current=s.id == this.id) for s in sessions], "next_cursor": None}


@blp.route("/me/devices/<uuid:device_id>")
class MyDevice(MethodView):
    @blp.doc(operationId="revokeMyDevice")
    @open_while_pending
    @signed_in
    @blp.response(204)
    def delete(self, device_id: uuid.UUID):
        """Revoke one of my device sessions (a lost or replaced phone)"""
        session = OWN_DEVICE_SESSIONS.load_or_404(device_id)
        service.revoke_session(session=session, reason="revoked_by_user")


@blp.route("/users")
class Users(MethodView):
    @blp.doc(operationId="listUsers")
    @allow(Role.ADMIN)
    @blp.arguments(UserListQuerySchema, location="query")
    @blp.response(200, UserPageSchema)
    def get(self, query):
        """List users (admin)"""
        users, next_cursor = service.list_users(role=query.get("role"), active=query.get("active"),
                                                cursor=query["cursor"], limit=query["limit"])
        return {"items": users, "next_cursor": next_cursor}

    @blp.doc(operationId="createUser")
    @allow(Role.ADMIN)
    @blp.arguments(UserCreateSchema)
    @blp.response(201, UserSchema)
    @problem(blp, 409, "The username is taken.")
    def post(self, body):
        """Create a user (admin)"""
        return service.create_user(**body, actor=current_user())


@blp.route("/users/<uuid:user_id>")
class UserDetail(MethodView):
    @blp.doc(operationId="getUser")
    @allow(Role.ADMIN)
    @blp.response(200, UserSchema)
    def get(self, user_id: uuid.UUID):
        """One user (admin)"""
        return USERS.load_or_404(user_id)

    @blp.doc(operationId="updateUser")
    @allow(Role.ADMIN)
    @blp.arguments(UserUpdateSchema)
    @blp.response(200, UserSchema)
    @problem(blp, 409, "The change would leave no active admin.")
    def patch(self, body, user_id: uuid.UUID):
        """Change a user (admin); `active: false` ends every session at once"""
        return service.update_user(user=USERS.load_or_404(user_id), changes=body, actor=current_user())


@blp.route("/users/<uuid:user_id>/access-approval")
class UserAccessApproval(MethodView):
    @blp.doc(operationId="approveAccess")
    @allow(Role.CLINIC_STAFF)
    @blp.arguments(AccessApprovalSchema)
    @blp.response(200, UserSchema)
    @problem(blp, 409, "The person's access is not waiting for approval.")
    def post(self, body, user_id: uuid.UUID):
        """Approve the clinical role an admin gave (clinic staff other than the grantee)"""
        return service.approve_access(user=USERS.load_or_404(user_id, lock=True), approver=current_user(),
                                      role=body.get("role"))


@blp.route("/users/<uuid:user_id>/devices")
class UserDevices(MethodView):
    @blp.doc(operationId="revokeUserDevices")
    @allow(Role.ADMIN)
    @blp.response(204)
    def delete(self, user_id: uuid.UUID):
        """Revoke every device session of a user (admin; a lost phone)"""
        service.revoke_all_sessions(user=USERS.load_or_404(user_id), reason="revoked_by_admin", actor=current_user())


def _device(session, *, current: bool) -> dict:
    return {
        "id": session.id,
        "device_name": session.device_name,
        "created_at": session.created_at,
        "last_seen_at": session.last_seen_at,
        "expires_at": session.expires_at,
        "current": current,
    }
