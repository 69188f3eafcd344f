"""The dispatcher: sends due texts from the outbox, each at most once.

One pass (`dispatch_once_and_commit`), run by the clock every `SMS_DISPATCH_SECONDS` and by
`flask --app backend outreach dispatch`:

1. **Sweep**: a row still `sending` `SMS_SENDING_STALE_SECONDS` after its claim belongs to a
   dispatcher that stopped between sending and recording; it becomes `unknown` (listed for staff,
   never retried: the text may have gone).
2. **Claim**, in one short transaction: pick due `queued` rows and lock their patients (on
   PostgreSQL `FOR UPDATE SKIP LOCKED`, so a second dispatcher takes other rows and other
   patients: consent and the rate limit are decided per patient, once), apply the rules — not opted in or no usable
   phone → `blocked`; episode closed or appointment gone → `cancelled`; automatic texts outside
   the send window or over the rate limit → stay `queued` with a later `due_at` and the reason —
   and move the rest to `sending` with a compare-and-set UPDATE (`… WHERE status = 'queued'`),
   which is what makes two dispatchers safe on SQLite as well. The claim commits **before** any
   request leaves.
3. **Send** each claimed text outside any transaction, then record the outcome in a transaction
   of its own: `sent` with the SID; `queued` again with a backoff after a `Retry` (until
   `SMS_MAX_ATTEMPTS`, then `failed`); `queued` again in 5 minutes, without using an attempt,
   when Twilio refuses the account itself (401/403/404: the settings, not the text); `failed`
   on a refusal (21610 also opts the patient out, 21211/21614 flag the phone); `unknown` when
   the request may have left.

A crash anywhere leaves either a `queued` row (nothing was sent) or a `sending` row (the sweep
makes it `unknown`): no text is ever sent twice by the dispatcher.

So a pass commits several times, not once as other units of work do: the sweep, the claim, and
each send's outcome are each on record before the next step. The functions that commit say so
in their names (`…_and_commit`, `_commit_…`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from collections import defaultdict
from concurrent.futures import Future, as_completed
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from backend import unit_of_work
from backend.auth.models import User
from backend.cases.models import Appointment, AppointmentStatus, Episode, EpisodeStatus, Patient, SmsStatus
from backend.database import utcnow
from backend.extensions import db
from backend.outreach import recipients, rules, sms, templates
from backend.outreach.models import AUTOMATIC_KINDS, WENT_OUT, Message, MessageKind, MessageStatus

log = logging.getLogger(__name__)

MAX_BACKOFF = dt.timedelta(hours=1)
#: How long texts wait after Twilio refused the account's credentials (without using attempts).
MISCONFIGURED_WAIT = dt.timedelta(minutes=5)


@dataclasses.dataclass
class Tally:
    sent: int = 0
    deferred: int = 0
    blocked: int = 0
    cancelled: int = 0
    retrying: int = 0
    failed: int = 0
    unknown: int = 0

    def add(self, other: Tally) -> None:
        for field in dataclasses.fields(self):
            setattr(self, field.name, getattr(self, field.name) + getattr(other, field.name))

    @property
    def claimed(self) -> int:
        return self.sent + self.retrying + self.failed + self.unknown


@dataclasses.dataclass(frozen=True)
class _Claim:
    id: uuid.UUID
    phone: str
    #: What goes: an automatic text is written now, in the patient's language as it is now.
    body: str
    language: str | None
    fell_back: bool
    attempts: int


def dispatch_and_commit(*, now: dt.datetime | None = None, max_passes: int = 1000) -> Tally:
    """Passes until nothing due is left (or `max_passes`); the clock's job and the CLI's."""
    tally = Tally()
    with sms.SenderPool(current_app.config) as pool:
        for _ in range(max_passes):
            one = dispatch_once_and_commit(now=now, pool=pool)
            tally.add(one)
            if one.claimed == 0 and one.deferred + one.blocked + one.cancelled == 0:
                break
    return tally


def dispatch_once_and_commit(*, pool: sms.SenderPool, now: dt.datetime | None = None,
                             limit: int | None = None) -> Tally:
    """One pass: sweep, claim a batch, send it, record each outcome as it comes."""
    config = current_app.config
    clock = utcnow if now is None else (lambda: now)  # tests fix the clock; so do sends' times then
    now = clock()
    tally = Tally(unknown=sweep_stuck_and_commit(now=now))
    claims = claim_due_and_commit(now=now, limit=limit or config["SMS_DISPATCH_BATCH"], tally=tally)
    callback = f"{config['PUBLIC_BASE_URL'].rstrip('/')}/webhooks/twilio/status"
    sending = {pool.submit(message_id=claim.id, to=claim.phone, body=claim.body,
                           status_callback=f"{callback}?message_id={claim.id}"): claim for claim in claims}
    for future in as_completed(sending):
        _commit_send_result(sending[future], future, config, tally, clock)
    return tally


def sweep_stuck_and_commit(*, now: dt.datetime) -> int:
    """Mark texts left `sending` by a dispatcher that stopped as `unknown`; commit."""
    stale = now - dt.timedelta(seconds=current_app.config["SMS_SENDING_STALE_SECONDS"])
    result = db.session.execute(
        sa.update(Message).where(Message.status == MessageStatus.SENDING, Message.claimed_at < stale)
        .values(status=MessageStatus.UNKNOWN, status_at=now, updated_at=now,
                status_reason="outcome unknown: the dispatcher stopped while sending; check before resending")
        .execution_options(synchronize_session=False))
    if result.rowcount:
        log.warning("texts left in sending marked unknown", extra={"count": result.rowcount})
    unit_of_work.commit()
    return result.rowcount


def claim_due_and_commit(*, now: dt.datetime, limit: int, tally: Tally) -> list[_Claim]:
    """Claim a batch and commit: the claims are on record before any request leaves."""
    claims = claim_due(now=now, limit=limit, tally=tally)
    unit_of_work.commit()
    return claims


def claim_due(*, now: dt.datetime, limit: int, tally: Tally) -> list[_Claim]:
    """Decide every due row of one batch; move the sendable ones to `sending`."""
    stmt = (sa.select(Message, Episode.status.label("episode_status"), Appointment.status.label("appointment_status"),
                      Appointment.starts_at.label("appointment_starts_at"), User.display_name.label("coach_name"))
            .outerjoin(Episode, Episode.id == Message.episode_id)
            .outerjoin(Appointment, Appointment.id == Message.appointment_id)
            .outerjoin(User, User.id == Episode.coach_id)
            .where(Message.status == MessageStatus.QUEUED, Message.due_at <= now)
            .order_by(Message.due_at, Message.id).limit(limit))
    if db.engine.dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Message, skip_locked=True)
    rows = db.session.execute(stmt).all()
    if not rows:
        return []
    patients = _lock_patients({row.Message.patient_id for row in rows if row.Message.patient_id is not None})
    policy = rules.Policy.from_config(current_app.config)
    earlier = _automatic_sends({row.Message.patient_id for row in rows if row.Message.automatic}, now)
    to_claim: dict[uuid.UUID, _Claim] = {}
    for row in rows:
        message = row.Message
        patient = patients.get(message.patient_id)
        if patient is None and message.patient_id is not None:
            continue  # another dispatcher, or an opt-out, holds this patient: the next pass decides
        refusal = _refusal(row, patient, now)
        if refusal is not None:
            status, reason = refusal
            _settle(message, status, reason, now)
            if status == MessageStatus.BLOCKED:
                tally.blocked += 1
            else:
                tally.cancelled += 1
            continue
        if message.automatic:
            zone = ZoneInfo(patient.timezone)
            at, reason = rules.earliest_send(now, zone, policy, earlier[message.patient_id])
            if at > now:
                if row.appointment_starts_at is not None and at >= row.appointment_starts_at:
                    _settle(message, MessageStatus.BLOCKED, f"not sent: {reason} until after the appointment", now)
                    tally.blocked += 1
                else:
                    message.due_at = at
                    message.status_reason = f"deferred to {at.astimezone(zone).isoformat(timespec='minutes')}: {reason}"
                    tally.deferred += 1
                continue
            earlier[message.patient_id].append(now)
        to_claim[message.id] = _claim(row, patient)
    db.session.flush()
    if not to_claim:
        return []
    claimed = set(db.session.scalars(
        sa.update(Message).where(Message.id.in_(to_claim), Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.SENDING, claimed_at=now, attempts=Message.attempts + 1, status_at=now,
                updated_at=now, status_reason=None,
                **{field: sa.case(*((Message.id == c.id, getattr(c, field)) for c in to_claim.values()))
                   for field in ("phone", "body", "language", "fell_back")})
        .returning(Message.id).execution_options(synchronize_session=False)))
    return [claim for message_id, claim in to_claim.items() if message_id in claimed]


def _claim(row, patient) -> _Claim:
    """The claim of a text that goes now: an automatic one written for the patient as they are."""
    message = row.Message
    if not message.automatic:
        return _Claim(message.id, patient.phone, message.body, message.language, False, message.attempts + 1)
    reminder = message.kind == MessageKind.APPOINTMENT_REMINDER
    text = templates.automatic_text(message.kind, patient=patient, coach_display_name=row.coach_name,
                                    appointment_starts_at=row.appointment_starts_at if reminder else None)
    return _Claim(message.id, patient.phone, text.body, text.language, text.fell_back, message.attempts + 1)


def _lock_patients(patient_ids: set[uuid.UUID]) -> dict[uuid.UUID, sa.Row]:
    """The batch's patients as they are now, locked until the claim commits.

    The rate limit and the consent check are per patient, not per message: two dispatchers
    must not each claim one of a patient's texts at once, nor claim one while an opt-out
    commits. On PostgreSQL a patient another transaction holds is skipped (SKIP LOCKED, so
    nothing ever waits here and no deadlock can form with an opt-out, which locks the patient
    and then the messages); on SQLite the claim's transaction already holds the write lock.
    """
    if not patient_ids:
        return {}
    stmt = (sa.select(Patient.id, Patient.phone, Patient.phone_invalid_at, Patient.sms_status, Patient.timezone,
                      Patient.language, Patient.first_name.label("first_name"))
            .where(Patient.id.in_(patient_ids)).order_by(Patient.id))
    if db.engine.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return {row.id: row for row in db.session.execute(stmt)}


def _refusal(row, patient, now: dt.datetime) -> tuple[MessageStatus, str] | None:
    message = row.Message
    if patient is None or patient.sms_status != SmsStatus.OPTED_IN:
        return MessageStatus.BLOCKED, "not sent: the patient is not opted in to texts"
    phone_refusal = recipients.phone_refusal(patient.phone, patient.phone_invalid_at)
    if phone_refusal is not None:
        return MessageStatus.BLOCKED, f"not sent: {phone_refusal}"
    if message.automatic and row.episode_status not in (None, EpisodeStatus.OPEN):
        return MessageStatus.CANCELLED, "cancelled: the episode closed"
    if message.kind == MessageKind.APPOINTMENT_REMINDER:
        if row.appointment_status != AppointmentStatus.SCHEDULED:
            return MessageStatus.CANCELLED, f"cancelled: the appointment is {row.appointment_status}"
        if now >= row.appointment_starts_at:
            return MessageStatus.BLOCKED, "not sent: the appointment has started"
    return None


def _automatic_sends(patient_ids: set[uuid.UUID], now: dt.datetime) -> dict[uuid.UUID, list[dt.datetime]]:
    """When each patient was last sent automatic texts (the rate limit's look-back), one query."""
    sends: dict[uuid.UUID, list[dt.datetime]] = defaultdict(list)
    if patient_ids:
        for patient_id, claimed_at in db.session.execute(
                sa.select(Message.patient_id, Message.claimed_at).where(
                    Message.patient_id.in_(patient_ids), Message.kind.in_(AUTOMATIC_KINDS),
                    Message.status.in_(WENT_OUT), Message.claimed_at > now - rules.WEEK - dt.timedelta(days=1))):
            sends[patient_id].append(claimed_at)
    return sends


def _settle(message: Message, status: MessageStatus, reason: str, now: dt.datetime) -> None:
    message.status, message.status_reason, message.status_at, message.due_at = status, reason, now, None


def _commit_send_result(claim: _Claim, future: Future, config, tally: Tally, clock) -> None:
    """Record the outcome of one send, in a transaction of its own."""
    try:
        sid = future.result()
    except sms.Retry as exc:
        _commit_retry(claim, str(exc), config, tally, clock())
    except sms.Misconfigured as exc:
        now = clock()
        _commit_outcome(claim.id, now, status=MessageStatus.QUEUED, due_at=now + MISCONFIGURED_WAIT,
                        attempts=claim.attempts - 1, status_reason=f"waiting: {exc}")
        tally.retrying += 1
        log.error("twilio refused the account settings; texts wait", extra={"message_id": str(claim.id)})
    except sms.Refused as exc:
        _commit_refusal(claim, exc, tally, clock())
    except sms.Unknown as exc:
        _commit_outcome(claim.id, clock(), status=MessageStatus.UNKNOWN,
                        status_reason=f"outcome unknown: {exc}; check before resending")
        tally.unknown += 1
        log.warning("text outcome unknown", extra={"message_id": str(claim.id)})
    else:
        now = clock()
        _commit_outcome(claim.id, now, status=MessageStatus.SENT, twilio_sid=sid, sent_at=now)
        tally.sent += 1


def _commit_outcome(message_id: uuid.UUID, now: dt.datetime, **values) -> None:
    _save_outcome(message_id, now, **values)
    unit_of_work.commit()


def _save_outcome(message_id: uuid.UUID, now: dt.datetime, **values) -> None:
    """Write a send's outcome, unless a status callback already moved the row on."""
    sid = values.pop("twilio_sid", None)
    updated = db.session.execute(
        sa.update(Message).where(Message.id == message_id, Message.status == MessageStatus.SENDING)
        .values(status_at=now, updated_at=now, **values, **({"twilio_sid": sid} if sid else {}))
        .execution_options(synchronize_session=False)).rowcount
    if not updated and sid:  # the callback came first: keep its status, add the SID
        db.session.execute(sa.update(Message).where(Message.id == message_id, Message.twilio_sid.is_(None))
                           .values(twilio_sid=sid, sent_at=values.get("sent_at"))
                           .execution_options(synchronize_session=False))


def _commit_retry(claim: _Claim, why: str, config, tally: Tally, now: dt.datetime) -> None:
    if claim.attempts >= config["SMS_MAX_ATTEMPTS"]:
        _commit_outcome(claim.id, now, status=MessageStatus.FAILED,
                        status_reason=f"failed after {claim.attempts} attempts: {why}")
        tally.failed += 1
        return
    delay = min(dt.timedelta(seconds=config["SMS_RETRY_BASE_SECONDS"] * 2 ** (claim.attempts - 1)), MAX_BACKOFF)
    due = now + delay
    _commit_outcome(claim.id, now, status=MessageStatus.QUEUED, due_at=due,
                    status_reason=f"retrying at {due.isoformat(timespec='seconds')} (attempt {claim.attempts}): {why}")
    tally.retrying += 1


def _commit_refusal(claim: _Claim, exc: sms.Refused, tally: Tally, now: dt.datetime) -> None:
    if exc.code in recipients.OPTED_OUT_CODES:
        reason = "failed: the recipient has opted out (Twilio 21610)"
    elif exc.code in recipients.INVALID_NUMBER_CODES:
        reason = f"failed: the phone number is not a valid mobile number (Twilio {exc.code})"
    else:
        reason = f"failed: {exc}"
    _save_outcome(claim.id, now, status=MessageStatus.FAILED, error_code=exc.code, status_reason=reason)
    patient_id = db.session.scalar(sa.select(Message.patient_id).where(Message.id == claim.id))
    if patient_id is not None:
        recipients.apply_error_code(patient_id, exc.code)
    unit_of_work.commit()
    tally.failed += 1
