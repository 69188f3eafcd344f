"""Use cases of handoffs between levels of care.

The handoff state machine (product.md):

    sent → accepted | declined | cancelled
    accepted → completed | no_show | cancelled

Who may take each step: clinic staff accept, decline, complete or mark a no-show for handoffs
into the transition clinic (they run it); for handoffs to a community program, clinic staff or
the episode's coach record the program's answer after calling it. Anyone who may send a handoff
(ED nurse, clinic staff, the coach) may cancel an open one. Any other step is 409
`invalid-transition`. Completing moves the episode's level (the handoff log is the source of
truth for where the patient is). Use cases are keyword-only functions; `add_event` and
`lock_episode_then_handoff` are the helpers the deadline job shares. Flush, never commit.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from flask import current_app

from backend import idempotency, signals
from backend.audit import service as audit
from backend.auth.models import CASE_WORKERS, Role, User
from backend.cases import service as cases
from backend.cases.models import AppointmentKind, AppointmentStatus, Episode, Level
from backend.consents import service as consents
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.handoffs.models import (
    OPEN_STATUSES,
    Handoff,
    HandoffEvent,
    HandoffEventKind,
    HandoffStatus,
)
from backend.handoffs.scopes import HANDOFFS
from backend.pagination import keyset_page
from backend.programs import service as programs
from backend.schemas import json_ready

#: action → (statuses it may start from, status it leads to)
TRANSITIONS = {
    "accept": ((HandoffStatus.SENT,), HandoffStatus.ACCEPTED),
    "decline": ((HandoffStatus.SENT,), HandoffStatus.DECLINED),
    "complete": ((HandoffStatus.ACCEPTED,), HandoffStatus.COMPLETED),
    "no_show": ((HandoffStatus.ACCEPTED,), HandoffStatus.NO_SHOW),
    "cancel": (OPEN_STATUSES, HandoffStatus.CANCELLED),
}
#: The refusal of a step, as people say it: "An accepted handoff cannot be accepted."
_STATUS_WORDS = {HandoffStatus.NO_SHOW: "no-show"}
_STEP_WORDS = {"accept": "accepted", "decline": "declined", "complete": "completed",
               "no_show": "recorded as a no-show", "cancel": "cancelled"}


def refusal_of_step(status: HandoffStatus, action: str) -> str:
    said = _STATUS_WORDS.get(status, str(status))
    article = "An" if said[0] in "aeiou" else "A"
    return f"{article} {said} handoff cannot be {_STEP_WORDS[action]}."


#: Steps that answer for the receiving side (cancel is the sender's).
_RECEIVER_STEPS = ("accept", "decline", "complete", "no_show")


# --- handoffs ------------------------------------------------------------------------------

def _deadline_defaults(to_level: str, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    cfg = current_app.config
    if to_level == Level.TRANSITION_CLINIC:
        hours = cfg["HANDOFF_CLINIC_ACCEPT_HOURS"], cfg["HANDOFF_CLINIC_ARRIVE_HOURS"]
    else:
        hours = cfg["HANDOFF_PROGRAM_ACCEPT_HOURS"], cfg["HANDOFF_PROGRAM_ARRIVE_HOURS"]
    return now + dt.timedelta(hours=hours[0]), now + dt.timedelta(hours=hours[1])


def send_handoff_once(*, episode: Episode, fields: dict, actor: User) -> tuple[Handoff, bool]:
    """`send_handoff`, unless a retry with the client's `id` finds the handoff already sent
    (whatever happened to it since). Returns (handoff, created)."""
    existing = idempotency.created_before(Handoff, fields.get("id"), request=fields)
    if existing is not None:
        return read(handoff=existing), False
    return send_handoff(episode=episode, fields=fields, actor=actor), True


def send_handoff(*, episode: Episode, fields: dict, actor: User) -> Handoff:
    """Send a handoff from the episode's current level (the episode row is locked by the view,
    so two sends to one target cannot both pass the one-open-handoff check)."""
    cases.must_be_open(episode)
    to_level, program_id = fields["to_level"], fields.get("to_program_id")
    program = None
    if to_level == "community_program":
        if program_id is None:
            raise Problem(422, "Name the program.", errors={"to_program_id": ["Required for a community program."]})
        program = programs.named_program(program_id, field="to_program_id")
    elif program_id is not None:
        raise Problem(422, "The transition clinic is not a directory program.",
                      errors={"to_program_id": ["Only for community programs."]})
    if episode.level == to_level:
        raise Problem(409, f"The episode is already at the {to_level.replace('_', ' ')}.")
    if fields.get("to_user_id") is not None:
        receiver = db.session.get(User, fields["to_user_id"])
        if receiver is None or not receiver.active or receiver.role not in CASE_WORKERS:
            raise Problem(422, "The receiving person must be an active clinic staff member or coach.",
                          errors={"to_user_id": ["Not an active clinic staff member or coach."]})
    duplicate = db.session.scalar(sa.select(Handoff.id).where(
        Handoff.episode_id == episode.id, Handoff.status.in_(OPEN_STATUSES), Handoff.to_level == to_level,
        Handoff.to_program_id.is_(None) if program_id is None else Handoff.to_program_id == program_id))
    if duplicate is not None:
        raise Problem(409, "An open handoff to this destination already exists.", existing_id=str(duplicate))
    consent = None
    if program is not None and program.external:
        consent = consents.require_consent(episode=episode, program=program)
    now = utcnow()
    accept_by, arrive_by = _deadline_defaults(to_level, now)
    handoff = Handoff(**({"id": fields["id"]} if fields.get("id") is not None else {}),
                      episode_id=episode.id, from_level=str(episode.level), to_level=to_level,
                      to_program_id=program_id, to_user_id=fields.get("to_user_id"), method=fields["method"],
                      summary=_summary(fields["summary"], episode), accept_by=fields.get("accept_by") or accept_by,
                      arrive_by=fields.get("arrive_by") or arrive_by, created_by_id=actor.id)
    if handoff.arrive_by < handoff.accept_by:
        raise Problem(422, "Arrival cannot be due before acceptance.", errors={"arrive_by": ["Before accept_by."]})
    db.session.add(handoff)
    db.session.flush()
    add_event(handoff, HandoffStatus.SENT, actor, None)
    if consent is not None:
        consents.record_disclosure(consent=consent, episode=episode, program=program, content=handoff.summary,
                                   handoff_id=handoff.id, actor=actor)
    audit.record("handoff.create", resource_type="handoff", resource_id=handoff.id,
                 patient_ids=[episode.patient_id], details={"to_level": to_level})
    return handoff


def _summary(summary: dict, episode: Episode) -> dict:
    """What the receiver gets. Its `naloxone_given` is the episode's flag as the naloxone log
    has it when the handoff is sent, whatever the sender said: a summary never disagrees with
    the log (a kit is recorded with its product, setting and recipient, which a yes/no cannot
    give, so a `true` with no kit logged records nothing and reads `false`)."""
    return json_ready({**summary, "naloxone_given": episode.naloxone_given})


def take_step(*, handoff: Handoff, action: str, actor: User, note: str | None = None,
              arrived_at: dt.datetime | None = None) -> Handoff:
    """Move the handoff along the state machine, or answer 409 invalid-transition."""
    starts, leads_to = TRANSITIONS[action]
    episode, handoff = lock_episode_then_handoff(handoff)
    if action in _RECEIVER_STEPS and not _may_answer_for_receiver(handoff, episode, actor):
        raise Problem(403, "Clinic staff answer for the transition clinic; for a community program, "
                           "clinic staff or the episode's coach record its answer.")
    if handoff.status not in starts:
        raise Problem(409, refusal_of_step(handoff.status, action),
                      type="invalid-transition", status_now=handoff.status)
    if action == "complete":
        arrived_at = arrived_at or utcnow()
        _must_still_start_from(handoff, episode)
        current_start = max(p.started_at for p in episode.level_periods)
        if arrived_at < current_start:  # arrivals are recorded late, but never before the stay they end
            raise Problem(422, "The patient cannot have arrived before the current level of care began.",
                          errors={"arrived_at": ["Before the episode's current level began."]})
        handoff.arrived_at = arrived_at
        cases.move_level(episode=episode, level=handoff.to_level, at=arrived_at)
    handoff.status = leads_to
    add_event(handoff, leads_to, actor, note)
    audit.record(f"handoff.{action}", resource_type="handoff", resource_id=handoff.id,
                 patient_ids=[episode.patient_id])
    return handoff


def lock_episode_then_handoff(handoff: Handoff) -> tuple[Episode, Handoff]:
    """Lock in the one order every writer uses — the episode, then its handoffs — and reload
    both, so a step, the episode's close and the deadline job never deadlock or act on a
    stale status."""
    episode = cases.lock_episode(handoff.episode_id)
    handoff = db.session.scalar(sa.select(Handoff).where(Handoff.id == handoff.id).with_for_update()
                                .execution_options(populate_existing=True))
    return episode, handoff


def _must_still_start_from(handoff: Handoff, episode: Episode) -> None:
    """A handoff moves the episode on from the level it was sent from, never backwards."""
    if not handoff.sent_from_current_level(episode):
        raise Problem(409, f"The episode has moved on to the {str(episode.level).replace('_', ' ')} since this "
                           f"handoff was sent; cancel it instead.", status_now=handoff.status)


def _may_answer_for_receiver(handoff: Handoff, episode: Episode, actor: User) -> bool:
    if actor.role == Role.CLINIC_STAFF:
        return True
    return handoff.to_level == Level.COMMUNITY_PROGRAM and actor.role == Role.COACH and episode.coach_id == actor.id


def add_event(handoff: Handoff, status: HandoffStatus, actor: User | None, note: str | None,
              kind: HandoffEventKind = HandoffEventKind.TRANSITION) -> None:
    """Append an event to the handoff's log (`actor` None: the system acted)."""
    seq = db.session.scalar(sa.select(sa.func.coalesce(sa.func.max(HandoffEvent.seq), 0))
                            .where(HandoffEvent.handoff_id == handoff.id)) + 1
    db.session.add(HandoffEvent(handoff_id=handoff.id, seq=seq, status=status, by_id=actor.id if actor else None,
                                note=note, kind=kind))
    db.session.flush()
    db.session.expire(handoff, ["events"])


def read(*, handoff: Handoff) -> Handoff:
    audit.record("handoff.read", resource_type="handoff", resource_id=handoff.id,
                 patient_ids=cases.patient_ids_of([handoff.episode_id]))
    return handoff


def list_handoffs(*, user: User, filters: dict, cursor: str | None, limit: int):
    stmt = HANDOFFS.where(sa.select(Handoff), user)
    for name in ("status", "episode_id", "to_level"):
        if name in filters:
            stmt = stmt.where(getattr(Handoff, name) == filters[name])
    if "overdue" in filters:
        condition = Handoff.overdue(utcnow())
        stmt = stmt.where(condition if filters["overdue"] else ~condition)
    handoffs, next_cursor = keyset_page(stmt, keys=[Handoff.created_at, Handoff.id], cursor=cursor, limit=limit,
                                        descending=True, session=db.session)
    audit.record("handoff.list", patient_ids=cases.patient_ids_of({h.episode_id for h in handoffs}),
                 details={"count": len(handoffs)})
    return handoffs, next_cursor


def most_urgent(*, user: User, limit: int, offset: int = 0,
                now: dt.datetime | None = None) -> tuple[list[Handoff], dict]:
    """The open handoffs the user may see, most urgent first — overdue, then by the deadline to
    meet next (accept-by while waiting for an answer, arrive-by once accepted) — `limit` of them
    after the first `offset`, and how many are `waiting`, `accepted` and `overdue` in all. Reads
    (and audits) only the handoffs it returns, with a statement each for them and for the
    counts, however many are open."""
    now = now or utcnow()
    open_ = HANDOFFS.where(sa.select(Handoff), user).where(Handoff.status.in_(OPEN_STATUSES))
    deadline = sa.case((Handoff.status == HandoffStatus.SENT, Handoff.accept_by), else_=Handoff.arrive_by)
    found = list(db.session.scalars(open_.order_by(sa.case((Handoff.overdue(now), 0), else_=1), deadline, Handoff.id)
                                    .limit(limit).offset(offset)))
    counts = db.session.execute(open_.with_only_columns(
        sa.func.count().filter(Handoff.status == HandoffStatus.SENT).label("waiting"),
        sa.func.count().filter(Handoff.status == HandoffStatus.ACCEPTED).label("accepted"),
        sa.func.count().filter(Handoff.overdue(now)).label("overdue"))).one()
    audit.record("handoff.list", patient_ids=cases.patient_ids_of({h.episode_id for h in found}),
                 details={"count": len(found)})
    return found, counts._asdict()


# --- continuity ----------------------------------------------------------------------------

def on_appointment_changed(appointment, change: str) -> None:
    """The first transition-clinic visit attended completes the open ED→clinic handoff."""
    if change != AppointmentStatus.ATTENDED or appointment.kind != AppointmentKind.TRANSITION_CLINIC:
        return
    handoff = db.session.scalar(sa.select(Handoff).where(
        Handoff.episode_id == appointment.episode_id, Handoff.to_level == Level.TRANSITION_CLINIC,
        Handoff.status.in_(OPEN_STATUSES)))
    if handoff is None:
        return
    episode, handoff = lock_episode_then_handoff(handoff)  # the appointment's update holds the episode
    if handoff.status not in OPEN_STATUSES or not handoff.sent_from_current_level(episode):
        return
    if handoff.status == HandoffStatus.SENT:
        add_event(handoff, HandoffStatus.ACCEPTED, None, "Accepted by the attended visit.")
    handoff.status = HandoffStatus.COMPLETED
    handoff.arrived_at = max(appointment.starts_at, max(p.started_at for p in episode.level_periods))
    cases.move_level(episode=episode, level=Level.TRANSITION_CLINIC, at=handoff.arrived_at)
    add_event(handoff, HandoffStatus.COMPLETED, None, "First transition-clinic visit attended.")
    audit.record("handoff.complete", resource_type="handoff", resource_id=handoff.id,
                 patient_ids=[episode.patient_id], details={"by": "attended visit"})


def on_episode_closed(episode: Episode) -> None:
    """Closing an episode cancels its open handoffs, each with an event (the close holds the
    episode's lock; the handoffs are locked after it, in the one order)."""
    for handoff in db.session.scalars(sa.select(Handoff).where(Handoff.episode_id == episode.id,
                                                               Handoff.status.in_(OPEN_STATUSES))
                                      .with_for_update().execution_options(populate_existing=True)):
        handoff.status = HandoffStatus.CANCELLED
        add_event(handoff, HandoffStatus.CANCELLED, None, f"Episode closed ({episode.close_reason}).")


def connect_signals() -> None:
    signals.appointment_changed.connect(on_appointment_changed)
    signals.episode_closed.connect(on_episode_closed)


# --- for the read models (backend.caseload) -------------------------------------------------

def newest_open_handoff(episode_id) -> sa.ScalarSelect:
    """The id of an episode's newest open handoff (NULL without one; several are possible), as a
    subquery correlated to `episode_id`, a column of the caller's statement: what a caseload
    shows of each episode's handoffs, joined in its one statement."""
    newest = sa.orm.aliased(Handoff, name="newest_open_handoff")
    return (sa.select(newest.id).where(newest.episode_id == episode_id, newest.status.in_(OPEN_STATUSES))
            .order_by(newest.created_at.desc(), newest.id.desc()).limit(1).scalar_subquery())


def events_of_episode(*, episode_id) -> list[tuple[HandoffEvent, str]]:
    """Every event of the episode's handoffs, each with its handoff's `to_level`."""
    return [(event, to_level) for event, to_level in db.session.execute(
        sa.select(HandoffEvent, Handoff.to_level).join(Handoff).where(Handoff.episode_id == episode_id))]
