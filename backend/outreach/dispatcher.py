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

**When the database goes away mid-batch** (down, restarting, locked past the busy timeout), an
outcome that cannot be written is kept in memory, nothing more is handed to Twilio, and the texts
not yet handed over are released: back to `queued`, their attempt not used. Those outcomes are
written as soon as the database answers — retried with backoff for `SMS_OUTCOME_RETRY_SECONDS`
within the pass, then first thing in every later pass of this process, before the sweep could
call their texts `unknown`. So a text sent during the blip keeps its Twilio SID, a text never
handed over is sent later, and only a request that really left without an answer is `unknown`.

A crash anywhere leaves either a `queued` row (nothing was sent) or a `sending` row (the sweep
makes it `unknown`): no text is ever sent twice by the dispatcher. Every outcome is written only
to the row of its own claim (`claimed_at` matches), so a late write never touches a later claim.

So a pass commits several times, not once as other units of work do: the sweep, the claim, and
each send's outcome are each on record before the next step. The functions that commit say so
in their names (`…_and_commit`, `_commit_…`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
import uuid
from collections import defaultdict
from concurrent.futures import Future, as_completed
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app

from backend import errors, unit_of_work
from backend.auth.models import User
from backend.cases.models import (
    Appointment,
    AppointmentStatus,
    Episode,
    EpisodeStatus,
    Patient,
    SmsStatus,
)
from backend.database import utcnow
from backend.extensions import db
from backend.outreach import recipients, rules, sms, templates
from backend.outreach.models import (
    AUTOMATIC_KINDS,
    WENT_OUT,
    Message,
    MessageKind,
    MessageStatus,
)

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
    #: Claimed but never handed to Twilio (the database went away mid-batch): queued again.
    released: int = 0

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
    claimed_at: dt.datetime


@dataclasses.dataclass(frozen=True)
class _Outcome:
    """What became of one claimed text, decided before it is written (so it can wait for the database)."""
    claim: _Claim
    #: The `Tally` field it counts in.
    counts_as: str
    #: The row's new values.
    values: dict
    #: A refusal's Twilio error code, which may also change the patient (opted out, bad number).
    error_code: int | None = None


class _Unrecorded:
    """Outcomes this process decided but could not write yet, the database being away.

    One per app (and so per process): the clock's passes run on scheduler threads, and whichever
    runs next writes them before anything else."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._outcomes: list[_Outcome] = []

    def put(self, outcomes: list[_Outcome]) -> None:
        with self._lock:
            self._outcomes.extend(outcomes)

    def take(self) -> list[_Outcome]:
        with self._lock:
            outcomes, self._outcomes = self._outcomes, []
        return outcomes


def _unrecorded() -> _Unrecorded:
    return current_app.extensions.setdefault("bridgeline.outreach.unrecorded", _Unrecorded())


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
    tally = Tally()
    record_unrecorded_and_commit(tally, patience=0)  # before the sweep: these texts are not stuck
    now = clock()
    tally.unknown += sweep_stuck_and_commit(now=now)
    claims = claim_due_and_commit(now=now, limit=limit or config["SMS_DISPATCH_BATCH"], tally=tally)
    _send_and_commit(claims, pool, config, tally, clock)
    return tally


def _send_and_commit(claims: list[_Claim], pool: sms.SenderPool, config, tally: Tally, clock) -> None:
    """Hand the claims to Twilio and write each outcome as it comes, in a transaction of its own.

    If a write fails because the database is away, nothing more is handed over: the texts still
    waiting for a sender are cancelled (released), the requests in flight finish, and every
    outcome from then on waits in memory for the database (`record_unrecorded_and_commit`)."""
    callback = f"{config['PUBLIC_BASE_URL'].rstrip('/')}/webhooks/twilio/status"
    sending = {pool.submit(message_id=claim.id, to=claim.phone, body=claim.body,
                           status_callback=f"{callback}?message_id={claim.id}"): claim for claim in claims}
    held: list[_Outcome] = []
    for future in as_completed(sending):
        outcome = _outcome(sending[future], future, config, clock)
        if held:
            held.append(outcome)
            continue
        try:
            _record_and_commit([outcome])
        except sa.exc.SQLAlchemyError as exc:
            if not _database_away(exc):
                raise
            unit_of_work.roll_back(None)
            held.append(outcome)
            for waiting in sending:
                waiting.cancel()  # only those no sender has started: they never reach Twilio
            log.error("database unavailable mid-batch; texts not handed over yet are held back",
                      extra={"exc_type": type(exc).__name__})
        else:
            _count(tally, outcome)
    if held:
        _unrecorded().put(held)
        record_unrecorded_and_commit(tally, patience=config["SMS_OUTCOME_RETRY_SECONDS"])


def record_unrecorded_and_commit(tally: Tally, *, patience: float) -> None:
    """Write the outcomes kept while the database was away, retrying with backoff for up to
    `patience` seconds; if it still does not answer, they stay kept and the error is raised."""
    outcomes = _unrecorded().take()
    if not outcomes:
        return
    deadline = time.monotonic() + patience
    pause = 0.25
    while True:
        try:
            _record_and_commit(outcomes)
        except sa.exc.SQLAlchemyError as exc:
            if not _database_away(exc):
                _unrecorded().put(outcomes)
                raise
            unit_of_work.roll_back(None)
            if time.monotonic() + pause > deadline:
                _unrecorded().put(outcomes)
                log.error("database unavailable; text outcomes kept until it answers",
                          extra={"count": len(outcomes), "exc_type": type(exc).__name__})
                raise
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
        else:
            for outcome in outcomes:
                _count(tally, outcome)
            log.info("text outcomes kept during a database outage recorded", extra={"count": len(outcomes)})
            return


def _database_away(exc: BaseException) -> bool:
    return errors.is_unavailable(exc) or errors.is_transient(exc)


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
        to_claim[message.id] = _claim(row, patient, now)
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


def _claim(row, patient, now: dt.datetime) -> _Claim:
    """The claim of a text that goes now: an automatic one written for the patient as they are."""
    message = row.Message
    if not message.automatic:
        return _Claim(message.id, patient.phone, message.body, message.language, False, message.attempts + 1, now)
    reminder = message.kind == MessageKind.APPOINTMENT_REMINDER
    text = templates.automatic_text(message.kind, patient=patient, coach_display_name=row.coach_name,
                                    appointment_starts_at=row.appointment_starts_at if reminder else None)
    return _Claim(message.id, patient.phone, text.body, text.language, text.fell_back, message.attempts + 1, now)


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


def _outcome(claim: _Claim, future: Future, config, clock) -> _Outcome:
    """What became of one send (no database needed)."""
    now = clock()
    at = {"status_at": now, "updated_at": now}
    if future.cancelled():
        return _Outcome(claim, "released", {**at, "status": MessageStatus.QUEUED, "attempts": claim.attempts - 1,
                                            "claimed_at": None, "status_reason": "waiting: not sent, the database "
                                            "was unavailable mid-batch; sent when it answers again"})
    try:
        sid = future.result()
    except sms.Retry as exc:
        return _retry(claim, str(exc), config, now)
    except sms.Misconfigured as exc:
        log.error("twilio refused the account settings; texts wait", extra={"message_id": str(claim.id)})
        return _Outcome(claim, "retrying", {**at, "status": MessageStatus.QUEUED, "due_at": now + MISCONFIGURED_WAIT,
                                            "attempts": claim.attempts - 1, "status_reason": f"waiting: {exc}"})
    except sms.Refused as exc:
        if exc.code in recipients.OPTED_OUT_CODES:
            reason = "failed: the recipient has opted out (Twilio 21610)"
        elif exc.code in recipients.INVALID_NUMBER_CODES:
            reason = f"failed: the phone number is not a valid mobile number (Twilio {exc.code})"
        else:
            reason = f"failed: {exc}"
        return _Outcome(claim, "failed", {**at, "status": MessageStatus.FAILED, "error_code": exc.code,
                                          "status_reason": reason}, error_code=exc.code)
    except sms.Unknown as exc:
        log.warning("text outcome unknown", extra={"message_id": str(claim.id)})
        return _Outcome(claim, "unknown", {**at, "status": MessageStatus.UNKNOWN,
                                           "status_reason": f"outcome unknown: {exc}; check before resending"})
    return _Outcome(claim, "sent", {**at, "status": MessageStatus.SENT, "twilio_sid": sid, "sent_at": now})


def _retry(claim: _Claim, why: str, config, now: dt.datetime) -> _Outcome:
    at = {"status_at": now, "updated_at": now}
    if claim.attempts >= config["SMS_MAX_ATTEMPTS"]:
        return _Outcome(claim, "failed", {**at, "status": MessageStatus.FAILED,
                                          "status_reason": f"failed after {claim.attempts} attempts: {why}"})
    delay = min(dt.timedelta(seconds=config["SMS_RETRY_BASE_SECONDS"] * 2 ** (claim.attempts - 1)), MAX_BACKOFF)
    due = now + delay
    return _Outcome(claim, "retrying", {
        **at, "status": MessageStatus.QUEUED, "due_at": due,
        "status_reason": f"retrying at {due.isoformat(timespec='seconds')} (attempt {claim.attempts}): {why}"})


def _count(tally: Tally, outcome: _Outcome) -> None:
    setattr(tally, outcome.counts_as, getattr(tally, outcome.counts_as) + 1)


def _record_and_commit(outcomes: list[_Outcome]) -> None:
    for outcome in outcomes:
        _record(outcome)
    unit_of_work.commit()


def _record(outcome: _Outcome) -> None:
    """Write one outcome to its claim's row, unless a status callback already moved the row on.

    The row must still be the claim's (`claimed_at` matches) and `sending`, or `unknown` if the
    sweep got there first while the database was away: what this process knows is better news."""
    claim, values = outcome.claim, dict(outcome.values)
    sid = values.pop("twilio_sid", None)
    updated = db.session.execute(
        sa.update(Message).where(Message.id == claim.id, Message.claimed_at == claim.claimed_at,
                                 Message.status.in_((MessageStatus.SENDING, MessageStatus.UNKNOWN)))
        .values(**values, **({"twilio_sid": sid} if sid else {}))
        .execution_options(synchronize_session=False)).rowcount
    if not updated and sid:  # the callback came first: keep its status, add the SID
        db.session.execute(sa.update(Message).where(Message.id == claim.id, Message.twilio_sid.is_(None))
                           .values(twilio_sid=sid, sent_at=values["sent_at"])
                           .execution_options(synchronize_session=False))
    if outcome.error_code is not None and updated:
        patient_id = db.session.scalar(sa.select(Message.patient_id).where(Message.id == claim.id))
        if patient_id is not None:
            recipients.apply_error_code(patient_id, outcome.error_code)
