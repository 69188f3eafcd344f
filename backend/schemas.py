"""Schema building blocks shared by every domain: strict input, the field types every domain
reads the same way (timestamps with offsets, trimmed text, phone numbers, time zones, "not in
the future"), and the `{items, next_cursor}` list envelope with its query parameters."""

from __future__ import annotations

import datetime as dt
import re
import uuid
import zoneinfo

import marshmallow as ma
from marshmallow import ValidationError, fields, validate

from backend import phones
from backend.database import utcnow

#: Phones' clocks drift: "in the future" means more than this ahead of the server.
CLOCK_SKEW = dt.timedelta(minutes=5)
#: Nothing in this program happened before it existed: earlier times are typing mistakes.
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)


class InputSchema(ma.Schema):
    """A request body or query: unknown fields are an error, so clients learn of their bugs."""

    class Meta:
        unknown = ma.RAISE


class OutputSchema(ma.Schema):
    """A response body: open (`additionalProperties: true` in the spec), because within v1 the
    server adds response fields, and a generated client must take an answer with a field it does
    not know yet. (Requests stay closed: `InputSchema`.)"""

    class Meta:
        unknown = ma.INCLUDE


class Choice(fields.String):
    """One of a closed set of values, published once as a named schema (`#/components/schemas/
    <component>`, by `backend.openapi`) so that every field taking it — in requests and answers —
    is one type in a generated client, not one enum per field."""

    def __init__(self, component: str, values, **kwargs) -> None:
        self.component = component
        self.choices = [str(value) for value in values]
        super().__init__(validate=validate.OneOf(self.choices), **kwargs)


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


def json_ready(value):
    """`value` as JSON carries it, for records kept or shown as free-form JSON: instants in RFC
    3339, ids as strings, dicts and lists item by item."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    return value


def one_of(values) -> validate.OneOf:
    """A validator accepting the given values (an enum's members, or a few of them), in order."""
    return validate.OneOf([str(value) for value in values])


def not_in_future(moment: dt.datetime) -> None:
    """Validator of a time something happened: not ahead of the server's clock, nor before 2000."""
    if moment > utcnow() + CLOCK_SKEW:
        raise ValidationError("Must not be in the future.")
    if moment < EARLIEST:
        raise ValidationError("Must be after 2000-01-01.")


class Text(fields.String):
    """Text with surrounding whitespace trimmed; blank is not a value."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip()
        if not text:
            raise ValidationError("Must not be blank.")
        return text


def text(max_length: int, **kwargs) -> Text:
    """Trimmed, non-blank text of at most `max_length` characters."""
    return Text(validate=validate.Length(min=1, max=max_length), **kwargs)


class LanguageTag(fields.String):
    """A BCP 47 language tag such as `en` or `es-MX`."""

    _TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")

    def __init__(self, **kwargs) -> None:
        super().__init__(validate=validate.Regexp(self._TAG, error="A BCP 47 tag such as en or es-MX."), **kwargs)


class PhoneNumber(fields.String):
    """A phone number, normalised to E.164 (US numbers may omit +1)."""

    def _deserialize(self, value, attr, data, **kwargs):
        try:
            return phones.e164(super()._deserialize(value, attr, data, **kwargs))
        except phones.NotAPhoneNumber as exc:
            raise ValidationError(str(exc)) from exc


class TimeZone(fields.String):
    """An IANA time zone name such as America/New_York."""

    _known: frozenset[str] | None = None

    def _deserialize(self, value, attr, data, **kwargs):
        name = super()._deserialize(value, attr, data, **kwargs)
        if TimeZone._known is None:
            TimeZone._known = frozenset(zoneinfo.available_timezones())
        if name not in TimeZone._known:
            raise ValidationError("Not an IANA time zone (e.g. America/New_York).")
        return name


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
