"""Form input through the API's own schemas, and the hospital's time zone on the screen.

A form's fields are renamed to the schema's, times entered in `DEFAULT_TIMEZONE` become
timestamps, and the schema decides: the console can never accept what the API refuses, nor
the other way round. Errors come back per form field, to be shown next to it with the input kept.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar
from zoneinfo import ZoneInfo

from flask import current_app
from marshmallow import Schema, ValidationError

from backend import unit_of_work
from backend.errors import Problem, flatten_messages

T = TypeVar("T")


def zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["DEFAULT_TIMEZONE"])


def local_input(value: dt.datetime | None) -> str:
    """A timestamp as a `datetime-local` field's value, in the hospital's zone."""
    return value.astimezone(zone()).strftime("%Y-%m-%dT%H:%M") if value else ""


def now_input() -> str:
    return local_input(dt.datetime.now(dt.UTC))


def shown(value: dt.datetime | dt.date | None) -> str:
    """A date or time as people read it, times in the hospital's zone with the zone named."""
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        local = value.astimezone(zone())
        return local.strftime("%b %-d, %Y %-I:%M %p ") + local.tzname()
    return value.strftime("%b %-d, %Y")


def timestamp(value: str) -> str | None:
    """A `datetime-local` value in the hospital's zone as an ISO timestamp (None when empty;
    left as typed when unreadable, for the schema to refuse with its own message)."""
    value = value.strip()
    if not value:
        return None
    try:
        local = dt.datetime.fromisoformat(value)
    except ValueError:
        return value
    return (local if local.tzinfo else local.replace(tzinfo=zone())).isoformat()


#: The key of errors about the form as a whole (the API's `""`, the whole body's JSON Pointer).
WHOLE_FORM = "_form"


class FormErrors(Exception):
    """The form comes back: `errors` by form field, with `status` (422 for bad input, the
    service's own for a refusal, whose Problem is `problem`)."""

    def __init__(self, errors: dict[str, list[str]], status: int = 422, problem: Problem | None = None) -> None:
        super().__init__("invalid form")
        self.errors = errors
        self.status = status
        self.problem = problem


def load(schema: Schema, data: dict, names: dict[str, str] | None = None) -> dict:
    """`data` loaded by `schema`, or FormErrors keyed by the form's field names (`names` maps a
    schema field to the form field shown for it)."""
    names = names or {}
    try:
        return schema.load(data)
    except ValidationError as exc:
        raise FormErrors({names.get(field, WHOLE_FORM if field == "" else field): messages
                          for field, messages in flatten_messages(exc.messages).items()}) from None


def submit(schema: Schema, data: dict, action: Callable[[dict], T], names: dict[str, str] | None = None) -> T:
    """`action(fields)` on `data` loaded by `schema`, as the API's view would run its service.
    Bad input, or the service's refusal — whose work is rolled back first, so nothing is
    half-written — raises FormErrors keyed by the form's field names (`names`)."""
    fields = load(schema, data, names)
    try:
        return action(fields)
    except Problem as problem:
        unit_of_work.roll_back(problem.code)
        raise FormErrors(problem_errors(problem, names), problem.code, problem) from None


def problem_errors(problem: Problem, names: dict[str, str] | None = None) -> dict[str, list[str]]:
    """A service's refusal as form errors: its field errors where it names fields, else the
    whole form's (`_form`)."""
    names = names or {}
    if problem.errors:
        return {names.get(field, WHOLE_FORM if field == "" else field): messages
                for field, messages in problem.errors.items()}
    return {WHOLE_FORM: [problem.description]}
