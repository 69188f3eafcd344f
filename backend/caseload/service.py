"""The coach's prioritised caseload and the clinic's caseload review: read models that combine
the cases, handoffs and outreach domains (each rule they use is defined in its own domain:
`Handoff.overdue`, `Message.unread_reply`, `Patient.display_name`).

Priority rules, most urgent first (an episode's rank is its most urgent reason):

1. `handoff_overdue` — an open handoff is past its accept-by or arrive-by deadline;
2. `moud_supply_ending` — the latest medication supply ends within 48 h (or has ended) and no
   visit that could continue it is booked before its end (`backend.continuity.rules`);
3. `overdue_task` — an open task is past its due time;
4. `not_contacted_since_discharge` — discharged more than 24 h ago and not reached since;
5. `missed_appointment_not_followed_up` — an appointment was missed and no encounter (contact
   or attempt) has been logged since it was due;
6. `phone_invalid` — texting the patient's phone failed as an invalid or non-mobile number:
   texts are blocked until the coach finds a working number;
7. `unread_reply` — the patient's text reply is unread (outreach);
8. `no_contact_7_days` — not reached in the last 7 days (or never).

Order: rank; then more reasons first; then longest since last contact (never reached first);
then the oldest episode; then the episode id — deterministic, ties included.

Every figure comes from one SQL statement with correlated subqueries, so the number of
statements does not grow with the caseload. Reads only; the audit trail records each read.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from backend.audit import service as audit
from backend.auth import service as auth
from backend.auth.models import Role, User
from backend.cases.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    Encounter,
    Episode,
    Patient,
    Task,
    TaskStatus,
)
from backend.continuity import rules as continuity
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.handoffs import service as handoffs
from backend.handoffs.models import Handoff
from backend.outreach.models import Message
from backend.schemas import json_ready

RULES = ("handoff_overdue", "moud_supply_ending",
         "overdue_task", "not_contacted_since_discharge", "missed_appointment_not_followed_up",
         "phone_invalid", "unread_reply", "no_contact_7_days")
CONTACT_AFTER_DISCHARGE = dt.timedelta(hours=24)
CLINIC_VISIT_AFTER_DISCHARGE = dt.timedelta(hours=72)
RECENT_CONTACT = dt.timedelta(days=7)
AT_RISK_LIST_LIMIT = 200
#: How far back the review counts automatic texts that went in English for want of the patient's language.
LANGUAGE_FALLBACK_WINDOW = dt.timedelta(days=30)
_NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _figures(now: dt.datetime):
    """Per-episode figures, as correlated scalar subqueries on Episode."""
    reached = sa.and_(Encounter.episode_id == Episode.id, Encounter.reached)
    open_task = sa.and_(Task.episode_id == Episode.id, Task.status == TaskStatus.OPEN)
    followed_up = sa.exists().where(Encounter.episode_id == Appointment.episode_id,
                                    Encounter.occurred_at > Appointment.starts_at)
    return {
        "last_contact_at": sa.select(sa.func.max(Encounter.occurred_at)).where(reached).scalar_subquery(),
        "not_contacted_since_discharge": sa.and_(
            Episode.discharged_at < now - CONTACT_AFTER_DISCHARGE,
            ~sa.exists().where(reached, Encounter.occurred_at >= Episode.discharged_at)),
        "no_contact_7_days": ~sa.exists().where(reached, Encounter.occurred_at >= now - RECENT_CONTACT),
        "next_task_due_at": sa.select(sa.func.min(Task.due_at)).where(open_task).scalar_subquery(),
        "overdue_tasks": sa.select(sa.func.count()).where(Task.episode_id == Episode.id, Task.overdue(now))
        .scalar_subquery(),
        "next_appointment_at": sa.select(sa.func.min(Appointment.starts_at)).where(
            Appointment.episode_id == Episode.id, Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.starts_at >= now).scalar_subquery(),
        "missed_not_followed_up": sa.exists().where(
            Appointment.episode_id == Episode.id, Appointment.status == AppointmentStatus.MISSED, ~followed_up),
        "handoff_overdue": sa.exists().where(Handoff.episode_id == Episode.id, Handoff.overdue(now)),
        "unread_messages": sa.select(sa.func.count()).select_from(Message).where(
            Message.patient_id == Episode.patient_id, Message.unread_reply).scalar_subquery(),
        "clinic_visit_attended": sa.exists().where(
            Appointment.episode_id == Episode.id, Appointment.kind == AppointmentKind.TRANSITION_CLINIC,
            Appointment.status == AppointmentStatus.ATTENDED),
    }


def _continuity_figures(now: dt.datetime):
    """The figures of continuity of treatment (kept apart from `_figures`, which review() also
    aggregates per coach)."""
    return {"moud_covered_until": continuity.covered_until(Episode.id),
            "moud_supply_ending": continuity.ending(Episode.id, now)}


def _rows(where, now: dt.datetime):
    figures = {**_figures(now), **_continuity_figures(now)}
    stmt = (sa.select(Episode.id, Episode.patient_id, Episode.coach_id, Episode.level, Episode.opened_at,
                      Episode.discharged_at, Patient.display_name, Patient.phone_invalid_at,
                      *(expr.label(name) for name, expr in figures.items()))
            .join(Patient, Patient.id == Episode.patient_id)
            .where(Episode.is_open, where))
    return db.session.execute(stmt).all()


def _reasons(row) -> list[str]:
    reasons = []
    if row.handoff_overdue:
        reasons.append("handoff_overdue")
    if row.moud_supply_ending:
        reasons.append("moud_supply_ending")
    if row.overdue_tasks:
        reasons.append("overdue_task")
    if row.not_contacted_since_discharge:
        reasons.append("not_contacted_since_discharge")
    if row.missed_not_followed_up:
        reasons.append("missed_appointment_not_followed_up")
    if row.phone_invalid_at is not None:
        reasons.append("phone_invalid")
    if row.unread_messages:
        reasons.append("unread_reply")
    if row.no_contact_7_days:
        reasons.append("no_contact_7_days")
    return reasons


def _sort_key(entry: dict):
    reasons = entry["priority_reasons"]
    rank = RULES.index(reasons[0]) if reasons else len(RULES)
    return (rank, -len(reasons), entry["last_contact_at"] or _NEVER, entry["opened_at"], str(entry["episode_id"]))


def caseload(*, coach_id: uuid.UUID, now: dt.datetime | None = None) -> list[dict]:
    """The coach's open episodes, most urgent first. An id that is no coach's is a 422, not an
    empty caseload that would read as "nothing to do" (a deactivated coach still has one)."""
    coach = db.session.get(User, coach_id)
    if coach is None or coach.role != Role.COACH:
        raise Problem(422, "No coach has this id.", errors={"coach_id": ["Not a coach."]})
    now = now or utcnow()
    entries = []
    rows = _rows(Episode.coach_id == coach_id, now)
    open_handoffs = _open_handoffs([row.id for row in rows], now)
    for row in rows:
        entries.append({
            "episode_id": row.id,
            "patient_id": row.patient_id,
            "patient_display_name": row.display_name,
            "level": str(row.level),
            "priority_reasons": sorted(_reasons(row), key=RULES.index),
            "last_contact_at": row.last_contact_at,
            "next_task_due_at": row.next_task_due_at,
            "overdue_tasks": row.overdue_tasks,
            "next_appointment_at": row.next_appointment_at,
            "moud_covered_until": row.moud_covered_until,
            "unread_messages": row.unread_messages,
            "phone_invalid": row.phone_invalid_at is not None,
            "open_handoff": open_handoffs.get(row.id),
            "discharged_at": row.discharged_at,
            "opened_at": row.opened_at,
        })
    entries.sort(key=_sort_key)
    audit.record("caseload.read", resource_type="user", resource_id=coach_id,
                 patient_ids=[e["patient_id"] for e in entries], details={"count": len(entries)})
    return entries


def _open_handoffs(episode_ids: list, now: dt.datetime) -> dict:
    """The open handoff of each episode (the newest if several), as the caseload shows it."""
    return {handoff.episode_id: json_ready({
        "id": handoff.id, "to_level": str(handoff.to_level), "status": str(handoff.status),
        "accept_by": handoff.accept_by, "arrive_by": handoff.arrive_by, "overdue": handoff.overdue(now)})
        for handoff in handoffs.open_handoffs(episode_ids=episode_ids)}


def review(*, now: dt.datetime | None = None) -> dict:
    """Every coach's load, the unassigned episodes, and the patients at risk of being lost."""
    now = now or utcnow()
    figures = _figures(now)
    per_episode = (sa.select(Episode.coach_id, figures["overdue_tasks"].label("overdue"),
                             figures["no_contact_7_days"].label("stale"),
                             figures["handoff_overdue"].label("handoff_overdue"),
                             figures["unread_messages"].label("unread"))
                   .where(Episode.is_open, Episode.coach_id.is_not(None)).subquery())
    load = {row.coach_id: row for row in db.session.execute(
        sa.select(per_episode.c.coach_id, sa.func.count().label("active"),
                  sa.func.coalesce(sa.func.sum(per_episode.c.overdue), 0).label("overdue_tasks"),
                  sa.func.sum(sa.case((per_episode.c.stale, 1), else_=0)).label("not_contacted_7d"),
                  sa.func.sum(sa.case((per_episode.c.handoff_overdue, 1), else_=0)).label("handoffs_overdue"),
                  sa.func.coalesce(sa.func.sum(per_episode.c.unread), 0).label("unread"))
        .group_by(per_episode.c.coach_id))}
    coaches = db.session.scalars(sa.select(User).where(User.role == Role.COACH, User.active.is_(True))
                                 .order_by(User.display_name, User.id)).all()
    rows = [{
        "coach_id": coach.id, "coach_display_name": coach.display_name,
        "active": load[coach.id].active if coach.id in load else 0,
        "overdue_tasks": int(load[coach.id].overdue_tasks) if coach.id in load else 0,
        "not_contacted_7d": int(load[coach.id].not_contacted_7d or 0) if coach.id in load else 0,
        "handoffs_overdue": int(load[coach.id].handoffs_overdue or 0) if coach.id in load else 0,
        "unread": int(load[coach.id].unread) if coach.id in load else 0,
    } for coach in coaches]

    # Unassigned: no coach, or a coach who has left (deactivated) — either way, nobody's list.
    has_active_coach = sa.exists().where(User.id == Episode.coach_id, User.active.is_(True))
    unassigned = _episode_list(~has_active_coach, now, order=Episode.opened_at)
    not_contacted = _episode_list(figures["not_contacted_since_discharge"], now, order=Episode.discharged_at)
    no_visit = _episode_list(sa.and_(Episode.discharged_at < now - CLINIC_VISIT_AFTER_DISCHARGE,
                                     ~figures["clinic_visit_attended"]), now, order=Episode.discharged_at)
    supply_ending = _episode_list(continuity.ending(Episode.id, now), now, order=continuity.covered_until(Episode.id))
    patients = {e["patient_id"] for group in (unassigned, not_contacted, no_visit, supply_ending)
                for e in group["items"]}
    fell_back = db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.fell_back == sa.true(), Message.claimed_at >= now - LANGUAGE_FALLBACK_WINDOW))
    audit.record("caseloads.read", patient_ids=patients, details={"coaches": len(rows)})
    return {"coaches": rows, "unassigned": unassigned,
            "at_risk": {"not_contacted_24h_after_discharge": not_contacted, "no_clinic_visit_72h": no_visit,
                        "moud_supply_ending": supply_ending},
            "texts": {"fell_back_to_english_30d": fell_back},
            "pending_access": [{"user_id": user.id, "username": user.username, "display_name": user.display_name,
                                "role": str(user.role), "granted_by_id": user.access_granted_by_id,
                                "granted_at": user.access_granted_at} for user in auth.pending_access()]}


def _episode_list(where, now: dt.datetime, *, order) -> dict:
    base = sa.select(Episode.id).where(Episode.is_open, where)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(base.subquery()))
    rows = db.session.execute(
        sa.select(Episode.id, Episode.patient_id, Episode.coach_id, Episode.level, Episode.opened_at,
                  Episode.discharged_at, Patient.display_name)
        .join(Patient, Patient.id == Episode.patient_id)
        .where(Episode.is_open, where)
        .order_by(order, Episode.id).limit(AT_RISK_LIST_LIMIT)).all()
    return {"count": total, "items": [{
        "episode_id": row.id, "patient_id": row.patient_id, "patient_display_name": row.display_name,
        "coach_id": row.coach_id, "level": str(row.level), "opened_at": row.opened_at,
        "discharged_at": row.discharged_at} for row in rows]}
