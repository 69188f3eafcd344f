"""Use cases of the phone app around texts: a patient's thread, a coach's one-off text, the
inbox of replies, and the review list of texts that need a person.

Who sees what is declared in `backend.outreach.scopes`. Keyword-only functions that flush and
never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from backend import idempotency
from backend.audit import service as audit
from backend.auth.models import User
from backend.cases import service as cases
from backend.cases.models import (
    Appointment,
    AppointmentStatus,
    Episode,
    Patient,
    SmsStatus,
)
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.outreach import privacy, recipients, templates
from backend.outreach.models import (
    NEEDS_REVIEW,
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
    MessageTemplate,
)
from backend.outreach.scopes import INBOX
from backend.pagination import keyset_page

#: How far ahead a coach may schedule a text.
MAX_SCHEDULE_AHEAD = dt.timedelta(days=90)


def compose_once(*, patient: Patient, fields: dict, actor: User) -> tuple[Message, bool]:
    """`compose`, unless a retry with the client's `id` finds the text already queued (however
    long ago, whatever its status or the patient's since). Returns (message, created)."""
    existing = idempotency.created_before(Message, fields.get("id"), request={"patient_id": patient.id, **fields})
    if existing is not None:
        audit.record("message.read", resource_type="message", resource_id=existing.id, patient_ids=[patient.id])
        return existing, False
    return compose(patient=patient, fields=fields, actor=actor), True


def compose(*, patient: Patient, fields: dict, actor: User) -> Message:
    """Queue a coach's text to `patient` (free text or a template), checked before it is queued."""
    if patient.sms_status != SmsStatus.OPTED_IN:
        raise Problem(409, f"The patient's SMS status is {patient.sms_status}: texts go only to patients who "
                           "opted in.", type="sms-not-permitted", sms_status=str(patient.sms_status))
    if recipients.phone_refusal(patient.phone, patient.phone_invalid_at) is not None:
        raise Problem(409, "The patient has no phone number that can take texts; update it first.",
                      type="sms-not-permitted", sms_status=str(patient.sms_status))
    template_id = fields.get("template_id")
    if template_id is not None:
        body = _from_template(template_id, fields.get("variables") or {}, patient, actor)
    else:
        body = fields["body"].strip()
    words = privacy.revealing_words(body, full_name=(patient.given_name, patient.family_name))
    if words and not fields.get("confirm_privacy"):
        raise Problem(422, f"The text would reveal the service: {', '.join(words)}. Change it, or send "
                           "`confirm_privacy: true` if the patient agreed to such texts.",
                      type="message-privacy", words=words, errors={"body": [f"Reveals: {', '.join(words)}."]})
    now = utcnow()
    send_at = max(fields.get("send_at") or now, now)
    if send_at > now + MAX_SCHEDULE_AHEAD:
        raise Problem(422, "A text can be scheduled at most 90 days ahead.",
                      errors={"send_at": ["At most 90 days ahead."]})
    message = Message(**_client_id(fields), patient_id=patient.id, episode_id=cases.open_episode_id(patient.id),
                      template_id=template_id,
                      direction=MessageDirection.OUTBOUND, kind=MessageKind.STAFF, body=body,
                      status=MessageStatus.QUEUED,
                      status_reason="confirmed by the sender despite the privacy check" if words else None,
                      send_at=send_at, due_at=send_at, created_by_id=actor.id, created_at=now, status_at=now)
    db.session.add(message)
    db.session.flush()
    audit.record("message.create", resource_type="message", resource_id=message.id, patient_ids=[patient.id],
                 details={"template": template_id is not None, "privacy_confirmed": bool(words)})
    return message


def _client_id(fields: dict) -> dict:
    return {"id": fields["id"]} if fields.get("id") is not None else {}


def _from_template(template_id: uuid.UUID, variables: dict, patient: Patient, actor: User) -> str:
    template = db.session.get(MessageTemplate, template_id)
    if template is None:
        raise Problem(422, "No such template.", errors={"template_id": ["No such template."]})
    unknown = sorted(set(variables) - set(templates.PLACEHOLDERS))
    if unknown:
        raise Problem(422, f"Unknown variables: {', '.join(unknown)}.",
                      errors={"variables": [f"Unknown: {', '.join(unknown)}; known: "
                                            f"{', '.join(sorted(templates.PLACEHOLDERS))}."]})
    values = _default_values(patient, actor, template.language) | variables
    body = templates.render(template.body, values, template.language)
    missing = sorted(name for name in templates.placeholders(template.body) if name not in values)
    if missing:
        raise Problem(422, f"The template needs values for: {', '.join(missing)}.",
                      errors={"variables": [f"Missing: {', '.join(missing)}."]})
    return body


def _default_values(patient: Patient, actor: User, language: str) -> dict[str, str]:
    values = templates.default_values(patient=patient, coach_display_name=actor.display_name, language=language)
    upcoming = db.session.scalar(
        sa.select(Appointment.starts_at).join(Episode, Episode.id == Appointment.episode_id)
        .where(Episode.patient_id == patient.id, Episode.is_open,
               Appointment.status == AppointmentStatus.SCHEDULED, Appointment.starts_at > utcnow())
        .order_by(Appointment.starts_at).limit(1))
    if upcoming is not None:
        values |= templates.appointment_values(upcoming, patient.timezone, language)
    return values


def thread(*, patient: Patient, cursor: str | None, limit: int) -> tuple[list[Message], str | None]:
    """Both directions, newest first."""
    stmt = sa.select(Message).where(Message.patient_id == patient.id)
    rows, next_cursor = keyset_page(stmt, keys=[Message.created_at, Message.id], cursor=cursor, limit=limit,
                                    descending=True, session=db.session)
    audit.record("messages.read", resource_type="patient", resource_id=patient.id, patient_ids=[patient.id],
                 details={"count": len(rows)})
    return rows, next_cursor


def inbox(*, user: User, unread: bool | None, cursor: str | None, limit: int) -> tuple[list[Message], str | None]:
    """Replies the user should see, newest first (`unread` filters)."""
    stmt = INBOX.where(sa.select(Message), user)
    if unread is not None:
        stmt = stmt.where(Message.read_at.is_(None) if unread else Message.read_at.is_not(None))
    rows, next_cursor = keyset_page(stmt, keys=[Message.created_at, Message.id], cursor=cursor, limit=limit,
                                    descending=True, session=db.session)
    audit.record("inbox.read", patient_ids={m.patient_id for m in rows if m.patient_id}, details={"count": len(rows)})
    return rows, next_cursor


def mark_read(*, message: Message, user: User) -> Message:
    """Mark a reply read (again is a no-op: the first reader and time stay)."""
    if message.read_at is None:
        message.read_at, message.read_by_id = utcnow(), user.id
        db.session.flush()
    audit.record("message.mark_read", resource_type="message", resource_id=message.id,
                 patient_ids=[message.patient_id] if message.patient_id else [])
    return message


def needing_review(*, status: str | None, cursor: str | None, limit: int) -> tuple[list[Message], str | None]:
    """Outbound texts a person should look at: `unknown` (may or may not have gone), `failed`,
    `blocked` — newest first."""
    stmt = sa.select(Message).where(sa.text(NEEDS_REVIEW), Message.direction == MessageDirection.OUTBOUND)
    if status:
        stmt = stmt.where(Message.status == MessageStatus(status))
    rows, next_cursor = keyset_page(stmt, keys=[Message.created_at, Message.id], cursor=cursor, limit=limit,
                                    descending=True, session=db.session)
    audit.record("messages.review", patient_ids={m.patient_id for m in rows if m.patient_id},
                 details={"count": len(rows)})
    return rows, next_cursor


# --- for the read models (backend.caseload) -------------------------------------------------

def texts_of_episode(*, episode_id: uuid.UUID) -> list[Message]:
    """Every text of the episode, both directions (the timeline shows their codes and times)."""
    return list(db.session.scalars(sa.select(Message).where(Message.episode_id == episode_id)))
