"""Request and response bodies of sign-in, devices and user administration."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.auth.models import Access, Role
from backend.schemas import (
    InputSchema,
    OutputSchema,
    PageQuerySchema,
    Timestamp,
    one_of,
    page_of,
)

_USERNAME = validate.Regexp(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{1,63}$",
                            error="2–64 letters, digits or . _ @ + -, starting with a letter or digit.")
_PASSWORD = validate.Length(min=8, max=256)
_ROLE = validate.OneOf([r.value for r in Role])


class TokenRequestSchema(InputSchema):
    username = fields.String(required=True, validate=validate.Length(min=1, max=255))
    password = fields.String(required=True, validate=validate.Length(min=1, max=1024),
                             load_only=True)
    device_name = fields.String(load_default="Unnamed device", validate=validate.Length(min=1, max=100),
                                metadata={"description": "Shown in the device list, e.g. `Pixel 7 (work)`."})
    device_cookie = fields.String(validate=validate.Length(min=1, max=200), load_only=True, metadata={
        "description": "The `device_cookie` an earlier sign-in on this device answered: it gets through "
                       "while the account is locked against guesses from many addresses."})


class UserSummarySchema(OutputSchema):
    id = fields.UUID(required=True)
    username = fields.String(required=True)
    display_name = fields.String(required=True)
    role = fields.String(required=True, validate=_ROLE)


class TokenSchema(OutputSchema):
    token = fields.String(required=True, metadata={"description": "Send as `Authorization: Bearer <token>`."})
    token_type = fields.Constant("Bearer", required=True, metadata={"type": "string", "enum": ["Bearer"]})
    expires_at = Timestamp(required=True, metadata={"description": "Absolute end of this device session."})
    idle_timeout_seconds = fields.Integer(
        required=True, metadata={"description": "The token stops working after this much inactivity."})
    user = fields.Nested(UserSummarySchema, required=True)
    device_cookie = fields.String(required=True, metadata={
        "description": "Keep it on the device and send it with the next sign-in (see the request)."})


class UserSchema(UserSummarySchema):
    active = fields.Boolean(required=True)
    access = fields.String(required=True, validate=one_of(Access), metadata={
        "description": "`pending` while a clinical role an admin gave waits for a clinic-staff member's "
                       "approval (`POST /users/{id}/access-approval`); the person can sign in, but clinical "
                       "endpoints answer 403 `access-pending`."})
    access_granted_by_id = fields.UUID(allow_none=True, required=True)
    access_granted_at = Timestamp(allow_none=True, required=True)
    access_approved_by_id = fields.UUID(allow_none=True, required=True)
    access_approved_at = Timestamp(allow_none=True, required=True)
    created_at = Timestamp(required=True)
    updated_at = Timestamp(required=True)
    deactivated_at = Timestamp(allow_none=True, required=True)


class UserCreateSchema(InputSchema):
    username = fields.String(required=True, validate=_USERNAME,
                             metadata={"description": "Stored lower-case; unique."})
    display_name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    role = fields.String(required=True, validate=_ROLE)
    password = fields.String(required=True, load_only=True, validate=_PASSWORD)


class UserUpdateSchema(InputSchema):
    display_name = fields.String(validate=validate.Length(min=1, max=100))
    role = fields.String(validate=_ROLE, metadata={"description": "Changing it ends the user's sessions."})
    active = fields.Boolean(metadata={"description": "`false` deactivates and ends every session at once."})
    password = fields.String(load_only=True, validate=_PASSWORD,
                             metadata={"description": "Setting it ends the user's sessions."})


class AccessApprovalSchema(InputSchema):
    """The approver is the signed-in clinic-staff member (send `{}`, or no body)."""

    role = fields.String(validate=_ROLE, metadata={
        "description": "The role you are approving, as you saw it: 409 if it has changed since."})


class UserListQuerySchema(PageQuerySchema):
    role = fields.String(validate=_ROLE)
    active = fields.Boolean()


class DeviceSchema(OutputSchema):
    id = fields.UUID(required=True)
    device_name = fields.String(required=True)
    created_at = Timestamp(required=True)
    last_seen_at = Timestamp(required=True)
    expires_at = Timestamp(required=True)
    current = fields.Boolean(required=True, metadata={"description": "This is the session making the request."})


UserPageSchema = page_of(UserSchema, "UserPageSchema")
DevicePageSchema = page_of(DeviceSchema, "DevicePageSchema")
