"""Use cases of message templates: placeholders, the privacy check, the opt-out hint, segments.

Automatic texts are a template's body with its placeholders filled and the opt-out hint
appended; a template is refused when saved if it reveals the service (422 `message-privacy`
listing the words), names an unknown placeholder, or would not fit in two SMS segments with
realistic values.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

from backend.audit import service as audit
from backend.errors import Problem
from backend.extensions import db
from backend.outreach import privacy, segments
from backend.outreach.models import MessageTemplate

OPT_OUT_HINT = "Reply STOP to opt out."
#: Every placeholder a template may use, with the longest realistic value (for the segment check).
PLACEHOLDERS = {
    "first_name": "Alexandria",
    "coach_name": "Maria",
    "appointment_time": "10:30 AM",
    "appointment_date": "Tue Nov 24",
    "callback_phone": "(617) 555-0100",
}
MAX_SEGMENTS = 2
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def render(body: str, values: dict[str, str]) -> str:
    """The automatic text: placeholders filled, the opt-out hint appended."""
    text = _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body).strip()
    return f"{text} {OPT_OUT_HINT}"


def check(body: str) -> dict:
    """Refuse a body that reveals the service, uses unknown placeholders or is too long; return
    the sample rendering's encoding and segment count."""
    words = privacy.revealing_words(_PLACEHOLDER.sub(" ", body))
    if words:
        raise Problem(422, f"The text would reveal the service: {', '.join(words)}.", type="message-privacy",
                      words=words, errors={"body": [f"Reveals the service: {', '.join(words)}."]})
    unknown = sorted(set(_PLACEHOLDER.findall(body)) - set(PLACEHOLDERS))
    if unknown or body.count("{") != body.count("}"):
        raise Problem(422, "Unknown or unbalanced placeholders.",
                      errors={"body": [f"Unknown placeholders: {', '.join(unknown) or 'unbalanced braces'}; "
                                       f"known: {', '.join(sorted(PLACEHOLDERS))}."]})
    sample = render(body, PLACEHOLDERS)
    count = segments.count(sample)
    if count > MAX_SEGMENTS:
        raise Problem(422, f"With the opt-out hint the text takes {count} SMS segments; at most {MAX_SEGMENTS}.",
                      errors={"body": [f"{count} segments with realistic values and the opt-out hint."]})
    return {"encoding": segments.encoding(sample), "segments": count, "sample": sample}


def create(*, name: str, body: str) -> MessageTemplate:
    check(body)
    if db.session.scalar(sa.select(MessageTemplate.id).where(MessageTemplate.name == name)) is not None:
        raise Problem(409, f"A template named {name!r} exists.", errors={"name": ["Already taken."]})
    template = MessageTemplate(name=name, body=body)
    db.session.add(template)
    db.session.flush()
    audit.record("template.create", resource_type="message_template", resource_id=template.id)
    return template


def update(*, template: MessageTemplate, changes: dict) -> MessageTemplate:
    if "body" in changes:
        check(changes["body"])
    if changes.get("name") not in (None, template.name) and db.session.scalar(
            sa.select(MessageTemplate.id).where(MessageTemplate.name == changes["name"])) is not None:
        raise Problem(409, f"A template named {changes['name']!r} exists.", errors={"name": ["Already taken."]})
    for field, value in changes.items():
        setattr(template, field, value)
    db.session.flush()
    audit.record("template.update", resource_type="message_template", resource_id=template.id,
                 details={"fields": sorted(changes)})
    return template


def list_all() -> list[MessageTemplate]:
    return list(db.session.scalars(sa.select(MessageTemplate).order_by(MessageTemplate.name)).all())
