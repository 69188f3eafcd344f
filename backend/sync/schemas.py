"""The sync's answer (api.md `GET /api/v1/sync`): records as their own endpoints show them."""

from __future__ import annotations

from marshmallow import fields, validate

from backend.schemas import InputSchema, OutputSchema
from backend.sync.service import KINDS


class SyncQuerySchema(InputSchema):
    cursor = fields.String(load_default=None, validate=validate.Length(max=512), metadata={
        "description": "The `cursor` of the previous answer; leave it out for a first sync."})


ChangesSchema = type("ChangesSchema", (OutputSchema,), {
    kind.key: fields.List(fields.Nested(kind.schema), required=True, metadata={
        "description": f"{kind.key.capitalize()} created or changed, in their current state (for an episode "
                       "sent whole: its working set, see the guide)."})
    for kind in KINDS})


class RemovedSchema(OutputSchema):
    type = fields.String(required=True, validate=validate.OneOf([kind.name for kind in KINDS]))
    id = fields.UUID(required=True)


class SyncSchema(OutputSchema):
    cursor = fields.String(required=True, metadata={
        "description": "Store it once this page is applied; send it with the next sync."})
    has_more = fields.Boolean(required=True, metadata={"description": "Ask again at once with the new cursor."})
    changes = fields.Nested(ChangesSchema, required=True)
    removed = fields.List(fields.Nested(RemovedSchema), required=True, metadata={
        "description": "Records to delete from the phone: their episode left your scope (reassigned, closed, "
                       "moved beyond the hospital)."})
