"""Schema building blocks shared by every domain: strict input, timestamps with offsets,
and the `{items, next_cursor}` list envelope with its query parameters."""

from __future__ import annotations

import datetime as dt

import marshmallow as ma
from marshmallow import ValidationError, fields, validate


class InputSchema(ma.Schema):
    """A request body or query: unknown fields are an error, so clients learn of their bugs."""

    class Meta:
        unknown = ma.RAISE


class OutputSchema(ma.Schema):
    """A response body."""


class Timestamp(fields.AwareDateTime):
    """RFC 3339 timestamp that must carry an offset (a naive one is a 422); loaded as UTC."""

    def __init__(self, **kwargs) -> None:
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> dt.datetime:
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            return moment.astimezone(dt.timezone.utc)
        except OverflowError as exc:  # 0001-01-01T00:00+14:00 has no UTC equivalent
            raise ValidationError("Out of range once converted to UTC.") from exc


class PageQuerySchema(InputSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200),
                           metadata={"description": "Items per page (1–200, default 50)."})
    cursor = fields.String(load_default=None, validate=validate.Length(max=512),
                           metadata={"description": "`next_cursor` from the previous page."})


def page_of(item_schema: type[ma.Schema], name: str) -> type[ma.Schema]:
    """The list envelope `{items: [...], next_cursor}` around `item_schema`."""
    return type(name, (OutputSchema,), {
        "items": fields.List(fields.Nested(item_schema), required=True),
        "next_cursor": fields.String(allow_none=True, required=True,
                                     metadata={"description": "Pass as `cursor` for the next page; null at the end."}),
    })
