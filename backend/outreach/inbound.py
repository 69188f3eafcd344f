"""What Twilio tells us: replies from patients, and the fate of the texts we sent.

Both are idempotent on Twilio's MessageSid: a reply already stored is not handled again (no
second confirmation text), and a status callback only ever moves a text forward
(`sent` → `delivered`/`undelivered`/`failed`), so a repeated or late callback changes nothing.

A reply is matched to a patient by phone number. Opt-out keywords and plain-language requests,
in any language Bridgeline texts in, opt every matching patient out (cancelling their queued
texts) and get one confirmation in the language they asked in; START/YES/UNSTOP (COMENZAR/SÍ…)
opt back in a patient who was not opted in (from an opted-in patient, "yes" is an ordinary
reply); HELP/INFO (AYUDA) get a short reply with the callback number and no service name.

Twilio's own opt-out handling is authoritative: when the webhook carries `OptOutType` (Twilio's
Advanced Opt-Out: STOP, START or HELP), Twilio has already answered the patient, in the
language its keyword was set up in, so Bridgeline records the change and sends no second
answer. Without it, Bridgeline reads the text and answers itself. (On a long code Twilio also
answers its English STOP keywords itself and blocks any reply to an opted-out number, so a
patient never gets two confirmations either way.)
Bare keywords are handled and filed as read; everything else — plain-language opt-outs included,
since their words may matter to the coach — lands unread in the inbox: the coach's of the
patient's open episode, or the clinic's when the number matches no patient or several.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import sqlalchemy as sa

from backend import phones
from backend.audit import service as audit
from backend.cases import service as cases
from backend.cases.models import Patient, SmsStatus
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.outreach import keywords, recipients, templates
from backend.outreach.keywords import Intent
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)

log = logging.getLogger(__name__)

#: Twilio's Advanced Opt-Out signal (`OptOutType`), as Bridgeline reads it.
TWILIO_OPT_OUT_TYPES = {"STOP": Intent.OPT_OUT, "START": Intent.OPT_IN, "HELP": Intent.HELP}

#: Twilio's MessageStatus values we record; others (queued, accepted, sending…) add nothing.
_CALLBACK_STATUSES = {"sent": MessageStatus.SENT, "delivered": MessageStatus.DELIVERED,
                      "undelivered": MessageStatus.UNDELIVERED, "failed": MessageStatus.FAILED}
#: How far along a text is; a callback never moves it back. Unknown is resolved by any news.
_PROGRESS = {MessageStatus.SENDING: 0, MessageStatus.UNKNOWN: 0, MessageStatus.SENT: 1,
             MessageStatus.DELIVERED: 2, MessageStatus.UNDELIVERED: 2, MessageStatus.FAILED: 2}


def receive(form, *, now: dt.datetime | None = None) -> str | None:
    """Handle one inbound text; return the reply to send back in TwiML, if any."""
    now = now or utcnow()
    sid = _required(form, "MessageSid")
    if db.session.scalar(sa.select(Message.id).where(Message.twilio_sid == sid)) is not None:
        return None  # a retried webhook: already handled
    phone, body = _phone(_required(form, "From")), form.get("Body", "")[:1600]
    patients = list(db.session.scalars(sa.select(Patient).where(Patient.phone == phone).order_by(Patient.id)))
    patient = patients[0] if len(patients) == 1 else None
    reading = keywords.read(body)
    intent, bare, language = reading.intent, reading.bare, reading.language
    handled_by_twilio = form.get("OptOutType", "").strip().upper() in TWILIO_OPT_OUT_TYPES
    if handled_by_twilio:  # Twilio matched one of its opt-out keywords and has answered
        intent, bare = TWILIO_OPT_OUT_TYPES[form["OptOutType"].strip().upper()], True
    # "yes"/"sí" opts back in only who opted out; START opts in anyone not opted in yet
    waiting = (SmsStatus.OPTED_OUT,) if reading.affirmative and not handled_by_twilio \
        else (SmsStatus.OPTED_OUT, SmsStatus.UNKNOWN)
    if intent == Intent.OPT_IN and not [p for p in patients if p.sms_status in waiting]:
        intent, bare = None, False  # an ordinary "yes" is a reply for the coach
    if intent == Intent.OPT_OUT:
        recipients.set_status([p.id for p in patients], SmsStatus.OPTED_OUT)
    elif intent == Intent.OPT_IN:
        recipients.set_status([p.id for p in patients if p.sms_status in waiting], SmsStatus.OPTED_IN)
    episode_id = cases.open_episode_id(patient.id) if patient is not None else None
    reply = templates.reply_text(intent, language) if intent and not handled_by_twilio else None
    message = Message(patient_id=patient.id if patient else None, episode_id=episode_id,
                      direction=MessageDirection.INBOUND, kind=MessageKind.REPLY, body=body, phone=phone,
                      status=MessageStatus.RECEIVED,
                      status_reason=f"read as: {intent}" if intent else None, twilio_sid=sid, send_at=now,
                      status_at=now, created_at=now, read_at=now if bare else None)
    db.session.add(message)
    if reply is not None:
        db.session.add(Message(patient_id=message.patient_id, episode_id=episode_id,
                               direction=MessageDirection.OUTBOUND, kind=MessageKind.AUTO_REPLY, body=reply,
                               phone=phone, status=MessageStatus.SENT,
                               status_reason=f"answer to {intent}, sent in the webhook's reply", language=language,
                               send_at=now, sent_at=now, status_at=now, created_at=now))
    db.session.flush()
    audit.record("message.receive", resource_type="message", resource_id=message.id,
                 patient_ids=[p.id for p in patients], details={"intent": str(intent) if intent else None,
                                                                "matched_patients": len(patients),
                                                                "language": language,
                                                                "answered_by_twilio": handled_by_twilio})
    return reply


def status_callback(form, *, message_id: str | None, now: dt.datetime | None = None) -> None:
    """Record a text's progress from Twilio's status callback."""
    now = now or utcnow()
    sid = _required(form, "MessageSid")
    new = _CALLBACK_STATUSES.get(form.get("MessageStatus", "").lower())
    message = db.session.scalar(sa.select(Message).where(Message.twilio_sid == sid).with_for_update())
    if message is None and message_id:
        # A text whose send timed out (`unknown`) has no SID yet: our own id in the callback URL
        # still finds it, and the news resolves it.
        message = db.session.scalar(sa.select(Message).where(Message.id == _uuid(message_id),
                                                             Message.twilio_sid.is_(None)).with_for_update())
    if message is None:
        log.info("status callback for an unknown text", extra={"twilio_status": form.get("MessageStatus")})
        return
    if message.twilio_sid is None:
        message.twilio_sid = sid
    current = _PROGRESS.get(message.status)
    if new is None or current is None or _PROGRESS[new] <= current:
        db.session.flush()
        return
    code = _int(form.get("ErrorCode"))
    message.status, message.status_at = new, now
    message.sent_at = message.sent_at or now
    message.status_reason = f"Twilio: {new}" + (f" (error {code})" if code else "")
    if code:
        message.error_code = code
    db.session.flush()
    if code and message.patient_id is not None:
        recipients.apply_error_code(message.patient_id, code)


def _required(form, name: str) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise Problem(422, f"The webhook has no {name}.", errors={name: ["Missing."]})
    return value[:64]


def _phone(raw: str) -> str:
    """The sender's number as stored (E.164), or as it came when it is none (a short code…)."""
    try:
        return phones.e164(raw, require_valid=False)
    except phones.NotAPhoneNumber:
        return raw[:20]


def _uuid(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


def _int(raw: str | None) -> int | None:
    try:
        return int(raw) if raw else None
    except ValueError:
        return None
