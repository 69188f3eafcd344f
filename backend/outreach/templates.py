"""Use cases of message templates: the texts in each language, placeholders and the values every
text knows (`default_values`), the privacy check, the opt-out hint, segments.

A text has a name and a language. Bridgeline has built-in texts in every language it texts in
(`backend.outreach.languages`): the automatic ones (`check_in`, `appointment_reminder`), sent
with the language's opt-out hint appended, and the answers to keywords
(`opt_out_confirmation`, `opt_in_confirmation`, `help`), sent as they are. An admin's template
of that name and language replaces the built-in text. A patient gets the text in their
language (`es-MX` reads `es`), in English only when none exists in theirs — and such a text is
marked as having fallen back.

A template is refused when saved if it reveals the service in any language (422
`message-privacy` listing the words), names an unknown placeholder, is in a language Bridgeline
does not text in, or would not fit in two SMS segments with realistic values.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from babel.dates import format_datetime
from flask import current_app

from backend.audit import service as audit
from backend.errors import Problem
from backend.extensions import db
from backend.outreach import languages, privacy, segments
from backend.outreach.models import MessageTemplate

#: The English opt-out hint (each language's is in `backend.outreach.languages`).
OPT_OUT_HINT = languages.ENGLISH.opt_out_hint
#: Every placeholder a template may use, with the longest realistic value (for the segment check).
PLACEHOLDERS = {
    "first_name": "Maximiliana",
    "coach_name": "Francisca",
    "appointment_time": "10:30 AM",
    "appointment_date": "Tue Nov 24",
    "callback_phone": "(617) 555-0100",
}
MAX_SEGMENTS = 2
#: The appointment the samples show: the longest day and month names of the languages in use.
SAMPLE_APPOINTMENT = dt.datetime(2026, 9, 30, 14, 30, tzinfo=dt.timezone.utc)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_TEXTS = "bridgeline.texts"
#: What each built-in text knows when it is made (a check-in has no appointment; the answer to a
#: keyword knows only the callback number).
KNOWN_PLACEHOLDERS = {
    "check_in": {"first_name", "coach_name", "callback_phone"},
    "appointment_reminder": {"first_name", "coach_name", "callback_phone", "appointment_date", "appointment_time"},
    **{name: {"callback_phone"} for name in languages.REPLIES.values()},
}


@dataclasses.dataclass(frozen=True)
class Rendered:
    body: str
    #: The language the text is written in.
    language: str
    #: No text existed in the patient's language: this one is English.
    fell_back: bool


def render(body: str, values: dict[str, str], language: str = languages.FALLBACK) -> str:
    """An automatic text: placeholders filled, the opt-out hint of its language appended."""
    hint = languages.written_in(language).opt_out_hint
    return f"{fill(body, values)} {hint}"


def fill(body: str, values: dict[str, str]) -> str:
    """`body` with the placeholders it has values for filled in."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), body).strip()


def sample(*, name: str, body: str, language: str) -> str:
    """The text as it would go, with realistic values (an answer to a keyword has no hint)."""
    values = PLACEHOLDERS | appointment_values(SAMPLE_APPOINTMENT, "America/New_York", language)
    if name in languages.REPLIES.values():
        return fill(body, values)
    return render(body, values, language)


def default_values(*, patient, coach_display_name: str | None,
                   language: str = languages.FALLBACK) -> dict[str, str]:
    """The values every text knows: the patient's first name, the coach's first name (the
    sender's, for a coach's own text; the episode coach's, for an automatic one; without one,
    "your care team" in the text's language), the callback phone."""
    coach = coach_display_name.split()[0] if coach_display_name and coach_display_name.strip() else None
    care_team = languages.written_in(language).care_team
    return {"first_name": patient.first_name, "coach_name": coach or care_team,
            "callback_phone": current_app.config["SMS_CALLBACK_PHONE"]}


def placeholders(body: str) -> set[str]:
    return set(_PLACEHOLDER.findall(body))


def appointment_values(starts_at: dt.datetime, timezone: str, language: str = languages.FALLBACK) -> dict[str, str]:
    """{appointment_date} and {appointment_time} in the patient's time zone and language
    ("Tue Nov 24", "3:00 PM"; "martes, 24 de noviembre", "15:00")."""
    spoken = languages.written_in(language)
    zone = ZoneInfo(timezone)
    return {"appointment_date": format_datetime(starts_at, spoken.date_pattern, tzinfo=zone, locale=spoken.locale),
            "appointment_time": format_datetime(starts_at, spoken.time_pattern, tzinfo=zone, locale=spoken.locale)}


def check(body: str, *, name: str = "", language: str = languages.FALLBACK) -> dict:
    """Refuse a body that reveals the service (in any language), uses unknown placeholders or is
    too long; return the sample rendering's encoding and segment count."""
    words = privacy.revealing_words(_PLACEHOLDER.sub(" ", body))
    if words:
        raise Problem(422, f"The text would reveal the service: {', '.join(words)}.", type="message-privacy",
                      words=words, errors={"body": [f"Reveals the service: {', '.join(words)}."]})
    unknown = sorted(set(_PLACEHOLDER.findall(body)) - set(PLACEHOLDERS))
    if unknown or body.count("{") != body.count("}"):
        raise Problem(422, "Unknown or unbalanced placeholders.",
                      errors={"body": [f"Unknown placeholders: {', '.join(unknown) or 'unbalanced braces'}; "
                                       f"known: {', '.join(sorted(PLACEHOLDERS))}."]})
    text = sample(name=name, body=body, language=language)
    count = segments.count(text)
    if count > MAX_SEGMENTS:
        raise Problem(422, f"With the opt-out hint the text takes {count} SMS segments; at most {MAX_SEGMENTS}.",
                      errors={"body": [f"{count} segments with realistic values and the opt-out hint."]})
    return {"encoding": segments.encoding(text), "segments": count, "sample": text}


def _check_built_in(name: str, body: str) -> None:
    """A template named after a built-in text replaces it: it may use only what that text knows,
    and the answer to HELP must give the callback number."""
    allowed = KNOWN_PLACEHOLDERS.get(name)
    extra = sorted(placeholders(body) - allowed) if allowed is not None else []
    if extra:
        raise Problem(422, f"The {name} text is made without: {', '.join(extra)}.",
                      errors={"body": [f"{name} can use only: {', '.join(sorted(allowed))}."]})
    if name == languages.REPLIES["help"] and "callback_phone" not in placeholders(body):
        raise Problem(422, "The answer to HELP must give the callback number.",
                      errors={"body": ["Include {callback_phone}."]})


def _language_tag(tag: str) -> str:
    """A template's language, as stored: a BCP 47 tag of a language Bridgeline texts in."""
    if languages.of(tag) is None:
        raise Problem(422, f"Bridgeline texts in {', '.join(languages.LANGUAGES)}; not in {tag}.",
                      errors={"language": [f"One of: {', '.join(languages.LANGUAGES)} (or a regional tag of one)."]})
    return languages.canonical(tag)


def _refuse_duplicate(name: str, language: str, template_id=None) -> None:
    taken = db.session.scalar(sa.select(MessageTemplate.id).where(
        MessageTemplate.name == name, MessageTemplate.language == language))
    if taken is not None and taken != template_id:
        raise Problem(409, f"A template named {name!r} exists in {language}.", errors={"name": ["Already taken."]})


def create(*, name: str, body: str, language: str = languages.FALLBACK) -> MessageTemplate:
    language = _language_tag(language)
    check(body, name=name, language=language)
    _check_built_in(name, body)
    _refuse_duplicate(name, language)
    template = MessageTemplate(name=name, body=body, language=language)
    db.session.info.pop(_TEXTS, None)
    db.session.add(template)
    db.session.flush()
    audit.record("template.create", resource_type="message_template", resource_id=template.id)
    return template


def update(*, template: MessageTemplate, changes: dict) -> MessageTemplate:
    if "language" in changes:
        changes = {**changes, "language": _language_tag(changes["language"])}
    name, body = changes.get("name", template.name), changes.get("body", template.body)
    language = changes.get("language", template.language)
    if "body" in changes or "language" in changes or "name" in changes:
        check(body, name=name, language=language)
    _check_built_in(name, body)
    _refuse_duplicate(name, language, template.id)
    for field, value in changes.items():
        setattr(template, field, value)
    db.session.info.pop(_TEXTS, None)
    db.session.flush()
    audit.record("template.update", resource_type="message_template", resource_id=template.id,
                 details={"fields": sorted(changes)})
    return template


def text_for(name: str, tag: str | None) -> tuple[str, str, bool]:
    """The body of the built-in text `name` for a reader of `tag`, its language, and whether it
    fell back to English: an admin's template in that tag, or in its language, or the built-in
    text of that language; else the same in English. Looked up once per database session (a
    request, a job run), and again after an edit."""
    cache = db.session.info.setdefault(_TEXTS, {})
    key = (name, languages.canonical(tag or languages.FALLBACK))
    if key not in cache:
        cache[key] = _find(name, key[1])
    return cache[key]


def _find(name: str, tag: str) -> tuple[str, str, bool]:
    primary = languages.primary(tag)
    wanted = [language for language in dict.fromkeys((tag, primary)) if languages.of(language) is not None]
    saved = dict(db.session.execute(sa.select(MessageTemplate.language, MessageTemplate.body).where(
        MessageTemplate.name == name, MessageTemplate.language.in_([*wanted, languages.FALLBACK]))).all())
    for language in wanted:
        if language in saved:
            return saved[language], primary, False
    if primary in languages.LANGUAGES:
        return languages.LANGUAGES[primary].texts[name], primary, False
    english = saved.get(languages.FALLBACK, languages.ENGLISH.texts[name])
    return english, languages.FALLBACK, True


def automatic_text(kind: str, *, patient, coach_display_name: str | None,
                   appointment_starts_at: dt.datetime | None = None) -> Rendered:
    """The automatic text of `kind` for `patient` as it goes now: in their language, with their
    values, the opt-out hint of that language appended."""
    body, language, fell_back = text_for(str(kind), patient.language)
    values = default_values(patient=patient, coach_display_name=coach_display_name, language=language)
    if appointment_starts_at is not None:
        values |= appointment_values(appointment_starts_at, patient.timezone, language)
    return Rendered(render(body, values, language), language, fell_back)


def reply_text(intent: str, language: str) -> str:
    """The answer to a keyword, in the language it was asked in."""
    body, _, _ = text_for(languages.REPLIES[str(intent)], language)
    return fill(body, {"callback_phone": current_app.config["SMS_CALLBACK_PHONE"]})


def list_all() -> list[MessageTemplate]:
    return list(db.session.scalars(sa.select(MessageTemplate).order_by(MessageTemplate.name,
                                                                       MessageTemplate.language)).all())
