"""Schema building blocks shared by every domain: strict input, the field types every domain
reads the same way (timestamps with offsets, trimmed text, phone numbers, time zones, "not in
the future"), and the `{items, next_cursor}` list envelope with its query parameters."""

from __future__ import annotations

import datetime as dt
import functools
import re
import uuid
import zoneinfo

import marshmallow as ma
from marshmallow import ValidationError, fields, missing, utils, validate

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
    not know yet. (Requests stay closed: `InputSchema`.)

    Dumped by a plan made once per schema instance (`_DumpPlan`): the same values as
    marshmallow's own `Schema._serialize`, without its five calls per field to find each value
    (a caseload of 60 entries: 1.1 -> 0.5 ms; a first sync page's 800 records: about 4 ms less).
    The test suite dumps every answer both ways and compares them (`check_dumps`)."""

    class Meta:
        unknown = ma.INCLUDE

    def _serialize(self, obj, *, many: bool = False):
        if many and obj is not None:
            return [self._serialize(item) for item in obj]
        plan = self.__dict__.get("_dump_plan")
        if plan is None:
            plan = self._dump_plan = _DumpPlan(self)
        result = plan.dump(obj)
        if check_dumps:
            expected = ma.Schema._serialize(self, obj)
            if result != expected:
                raise AssertionError(f"{type(self).__name__}: the dump plan gave {result!r}, "
                                     f"marshmallow gives {expected!r}")
        return result


#: Set by the test suite: every `OutputSchema` dump is compared with marshmallow's own.
check_dumps = False


def _same_as_marshmallow(field: fields.Field):
    """A function of a present value giving what `field._serialize` gives, for the field classes
    whose conversion is a plain function of the value; None for any other field."""
    serialize = type(field)._serialize
    if serialize is fields.Field._serialize:  # the value as it is (Boolean, Raw)
        return _as_it_is
    if serialize is fields.UUID._serialize:
        return _id_text
    if serialize is fields.Number._serialize and type(field)._format_num is fields.Number._format_num \
            and not field.as_string:
        return field.num_type
    if serialize is fields._TemporalField._serialize:
        return field.SERIALIZATION_FUNCS.get(field.format or field.DEFAULT_FORMAT)
    if serialize is fields.String._serialize:
        return _text
    if serialize is fields.List._serialize:
        inner = _same_as_marshmallow(field.inner)
        return None if inner is None else lambda values: [None if v is None else inner(v) for v in values]
    if serialize is fields.Nested._serialize:
        # Straight to the nested schema's own plan, past `Schema.dump`, when it has no hooks.
        schema = field.schema
        if isinstance(schema, OutputSchema) and not schema._hooks[ma.decorators.PRE_DUMP] \
                and not schema._hooks[ma.decorators.POST_DUMP]:
            many = schema.many or field.many
            return lambda value: schema._serialize(value, many=many)
    return None


def _as_it_is(value):
    return value


#: An id's text, kept for the ids a process shows again and again (a coach's episodes and
#: patients, on every caseload): 0.35 µs a `str(uuid)`, 0.08 µs from the cache.
_id_text = functools.lru_cache(maxsize=1 << 14)(str)


def _text(value) -> str:
    """`fields.String`'s conversion (`ensure_text_type`), with text passed on as it is."""
    return value if type(value) is str else utils.ensure_text_type(value)


class _DumpPlan:
    """How one schema instance dumps an object: per field, its output key, where its value is,
    and how the value becomes JSON. A field whose value marshmallow would fetch in any but the
    plain way (a dotted attribute, a schema's own `get_attribute`, a field's own `get_value`, a
    `Method` or `Constant` field) is left to marshmallow's `Field.serialize`."""

    def __init__(self, schema: ma.Schema) -> None:
        plain_access = type(schema).get_attribute is ma.Schema.get_attribute
        self.fields = []
        for name, field in schema.dump_fields.items():
            source = field.attribute if field.attribute is not None else name
            fast = (plain_access and field._CHECK_ATTRIBUTE and "." not in source
                    and type(field).get_value is fields.Field.get_value
                    and type(field).serialize is fields.Field.serialize)
            self.fields.append((name, field.data_key if field.data_key is not None else name, source, field,
                                fast, _same_as_marshmallow(field) if fast else None, schema.get_attribute))
        #: Every field's key, where its value is and its conversion, when every field has a plain
        #: one: a dict holding all of them is dumped in one comprehension (60 caseload entries:
        #: 0.26 -> 0.15 ms).
        self.direct = ([(key, source, convert) for _name, key, source, _field, _fast, convert, _get in self.fields]
                       if all(entry[5] is not None for entry in self.fields) else None)

    def dump(self, obj) -> dict:
        if self.direct is not None and type(obj) is dict:
            try:
                return {key: None if (value := obj[source]) is None else convert(value)
                        for key, source, convert in self.direct}
            except KeyError:
                pass  # a field's value is missing: its default, or nothing, as below
        result = {}
        is_dict = type(obj) is dict
        for name, key, source, field, fast, convert, accessor in self.fields:
            if not fast:
                value = field.serialize(name, obj, accessor=accessor)
                if value is missing:
                    continue
                result[key] = value
                continue
            if is_dict:
                value = obj[source] if source in obj else getattr(obj, source, missing)
            else:
                value = _value_for_key(obj, source)
            if value is missing:
                default = field.dump_default
                value = default() if callable(default) else default
                if value is missing:
                    continue
            if convert is not None:
                result[key] = None if value is None else convert(value)
            else:
                result[key] = field._serialize(value, name, obj)
        return result


def _value_for_key(obj, key: str):
    """marshmallow's `utils._get_value_for_key`, without a default to pass on."""
    if not hasattr(obj, "__getitem__"):
        return getattr(obj, key, missing)
    try:
        return obj[key]
    except (KeyError, IndexError, TypeError, AttributeError):
        return getattr(obj, key, missing)


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
