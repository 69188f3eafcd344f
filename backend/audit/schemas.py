"""The audit trail as admins read it."""

from __future__ import annotations

from marshmallow import fields

from backend.schemas import OutputSchema, PageQuerySchema, Timestamp, page_of


class AuditQuerySchema(PageQuerySchema):
    patient_id = fields.UUID(metadata={"description": "Events that touched this patient."})
    actor_id = fields.UUID(metadata={"description": "Events by this user."})
    action = fields.String(metadata={"description": "e.g. `auth.sign_in_failed`."})
    since = Timestamp(metadata={"description": "At or after this instant."})
    until = Timestamp(metadata={"description": "Before this instant."})


class AuditEventSchema(OutputSchema):
    id = fields.UUID(required=True)
    seq = fields.Integer(attribute="chain_seq", required=True, allow_none=True, metadata={
        "description": "Position in the hash chain; null until the clock's sequencer seals the event "
                       "(normally within a second or two)."})
    occurred_at = Timestamp(required=True)
    actor_id = fields.UUID(allow_none=True, required=True)
    actor_username = fields.String(allow_none=True, required=True)
    actor_role = fields.String(allow_none=True, required=True)
    device_session_id = fields.UUID(allow_none=True, required=True)
    action = fields.String(required=True)
    status_code = fields.Integer(allow_none=True, required=True,
                                 metadata={"description": "HTTP status the request ended with."})
    resource_type = fields.String(allow_none=True, required=True)
    resource_id = fields.String(allow_none=True, required=True)
    patient_ids = fields.List(fields.UUID(), required=True)
    request_id = fields.String(allow_none=True, required=True)
    client_ip = fields.String(allow_none=True, required=True)
    details = fields.Dict(allow_none=True, required=True)
    prev_hash = fields.String(required=True, allow_none=True, metadata={"description": "Null until sealed."})
    hash = fields.String(required=True, allow_none=True, metadata={"description": "Null until sealed."})


AuditEventPageSchema = page_of(AuditEventSchema, "AuditEventPageSchema")
