"""The coach's prioritised caseload and the clinic's caseload review: read models that combine
the cases, handoffs and outreach domains (each rule they use is defined in its own domain:
`Handoff.overdue`, `Message.unread_reply`, `Patient.display_name`).

Priority rules, most urgent first (an episode's rank is its most urgent reason):

0. `back_in_ed` — the hospital's ADT feed registered the patient in the ED (or admitted them)
   again after a discharge, and the coach has not reached them since (`backend.interop`);
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
statements does not grow with the caseload; when a patient was last reached is read from
`EpisodeContact` (kept by the database from the encounters), not from every encounter. Reads
only; the audit trail records each read.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
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
    EpisodeContact,
    Patient,
    Task,
    TaskStatus,
)
from backend.continuity import rules as continuity
from backend.continuity.models import MedicationSupply
from backend.database import RecurringUuid, UTCDateTime, utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.handoffs import service as handoffs
from backend.handoffs.models import Handoff
from backend.interop.models import HospitalVisit
from backend.outreach.models import Message
from backend.pagination import keyset_page
from backend.query_plans import constants_inline, plan_once_as_lookups
from backend.schemas import json_ready

RULES = ("back_in_ed", "handoff_overdue", "moud_supply_ending",
         "overdue_task", "not_contacted_since_discharge", "missed_appointment_not_followed_up",
         "phone_invalid", "unread_reply", "no_contact_7_days")
CONTACT_AFTER_DISCHARGE = dt.timedelta(hours=24)
CLINIC_VISIT_AFTER_DISCHARGE = dt.timedelta(hours=72)
RECENT_CONTACT = dt.timedelta(days=7)
AT_RISK_LIST_LIMIT = 200
#: The review's lists of patients at risk of being lost (with `unassigned`, its lists).
AT_RISK_LISTS = ("not_contacted_24h_after_discharge", "no_clinic_visit_72h", "moud_supply_ending", "back_in_ed")
#: A coach's load in the review, in its order.
LOAD = ("active", "overdue_tasks", "not_contacted_7d", "handoffs_overdue", "unread")
#: How far back the review counts automatic texts that went in English for want of the patient's language.
LANGUAGE_FALLBACK_WINDOW = dt.timedelta(days=30)
_NEVER = dt.datetime.min.replace(tzinfo=dt.timezone.utc)


def _open_episodes(*columns) -> sa.Select:
    """A select of open episodes with, outer-joined, when each was last reached: what `_figures`'
    expressions read (one lookup per episode however many figures use it)."""
    return (sa.select(*columns).select_from(Episode)
            .outerjoin(EpisodeContact, EpisodeContact.episode_id == Episode.id).where(Episode.is_open))


def _instants(now: dt.datetime) -> dict[str, dt.datetime]:
    """The instants the figures compare with, all derived from `now`."""
    return {"now": now, "contact_due": now - CONTACT_AFTER_DISCHARGE, "recent": now - RECENT_CONTACT,
            "clinic_due": now - CLINIC_VISIT_AFTER_DISCHARGE, "supply_alert": now + continuity.ALERT_BEFORE_END}


def _figures(now: dt.datetime | None = None, *, at: dict | None = None):
    """Per-episode figures, on a select from `_open_episodes`: the episode's columns, its last
    contact, and correlated scalar subqueries. `at`: the instants (`_instants`), or bound
    parameters standing for them."""
    at = at if at is not None else _instants(now)

    def not_reached_since(instant) -> sa.ColumnElement[bool]:
        return sa.or_(EpisodeContact.last_reached_at.is_(None), EpisodeContact.last_reached_at < instant)

    open_task = sa.and_(Task.episode_id == Episode.id, Task.status == TaskStatus.OPEN)
    followed_up = sa.exists().where(Encounter.episode_id == Appointment.episode_id,
                                    Encounter.occurred_at > Appointment.starts_at)
    return {
        "last_contact_at": EpisodeContact.last_reached_at,
        "not_contacted_since_discharge": sa.and_(Episode.discharged_at < at["contact_due"],
                                                 not_reached_since(Episode.discharged_at)),
        "no_contact_7_days": not_reached_since(at["recent"]),
        "next_task_due_at": sa.select(sa.func.min(Task.due_at)).where(open_task).scalar_subquery(),
        "overdue_tasks": sa.select(sa.func.count()).where(Task.episode_id == Episode.id, Task.overdue(at["now"]))
        .scalar_subquery(),
        "next_appointment_at": sa.select(sa.func.min(Appointment.starts_at)).where(
            Appointment.episode_id == Episode.id, Appointment.status == AppointmentStatus.SCHEDULED,
            Appointment.starts_at >= at["now"]).scalar_subquery(),
        "missed_not_followed_up": sa.exists().where(
            Appointment.episode_id == Episode.id, Appointment.status == AppointmentStatus.MISSED, ~followed_up),
        "handoff_overdue": sa.exists().where(Handoff.episode_id == Episode.id, Handoff.overdue(at["now"])),
        "unread_messages": sa.select(sa.func.count()).select_from(Message).where(
            Message.patient_id == Episode.patient_id, Message.unread_reply).scalar_subquery(),
        "no_clinic_visit_72h": sa.and_(Episode.discharged_at < at["clinic_due"], ~sa.exists().where(
            Appointment.episode_id == Episode.id, Appointment.kind == AppointmentKind.TRANSITION_CLINIC,
            Appointment.status == AppointmentStatus.ATTENDED)),
        # the hospital's ADT feed (backend.interop): back in the ED, not reached since
        "back_in_ed": sa.exists().where(HospitalVisit.episode_id == Episode.id, HospitalVisit.back_in_ed == sa.true(),
                                        not_reached_since(HospitalVisit.registered_at)),
        "back_in_ed_at": sa.select(sa.func.max(HospitalVisit.registered_at)).where(
            HospitalVisit.episode_id == Episode.id, HospitalVisit.back_in_ed == sa.true()).scalar_subquery(),
        # continuity of treatment (backend.continuity.rules)
        "moud_covered_until": continuity.covered_until(Episode.id),
        "moud_supply_ending": continuity.ending(Episode.id, None, by=at["supply_alert"]),
    }


#: The figures a coach's caseload shows or ranks by (the review's lists read the others), in the
#: order `caseload` unpacks them.
_CASELOAD_FIGURES = ("last_contact_at", "not_contacted_since_discharge", "no_contact_7_days", "next_task_due_at",
                     "overdue_tasks", "next_appointment_at", "missed_not_followed_up", "handoff_overdue",
                     "unread_messages", "back_in_ed", "moud_covered_until", "moud_supply_ending")


@functools.lru_cache(maxsize=4)
def _coach_rows_statement(dialect: sa.Dialect) -> sa.Select:
    """The open episodes of one coach with the figures the caseload uses, built once per process
    (and database) with the instants and the coach as bound parameters: building the statement
    (some 240 expressions) took a fifth of a caseload request's CPU; SQLAlchemy caches its
    compiled form as before. Only what the caseload shows is selected: each figure is a lookup
    per episode, and so is the episode's newest open handoff (outer-joined: it was a statement
    of its own, a round trip on every request)."""
    at = {name: sa.bindparam(name, type_=UTCDateTime()) for name in _instants(utcnow())}
    figures = _figures(at=at)
    episode_id, patient_id = (sa.type_coerce(column, RecurringUuid()) for column in (Episode.id, Episode.patient_id))
    shown = sa.orm.aliased(Handoff, name="open_handoff")  # not `Handoff`: the figures' subqueries read that
    level, to_level, status = (sa.type_coerce(column, sa.String()) for column in  # as the text they are shown as
                               (Episode.level, shown.to_level, shown.status))
    statement = (_open_episodes(episode_id, patient_id, level, Episode.opened_at, Episode.discharged_at,
                                Patient.display_name, Patient.phone_invalid_at,
                                *(figures[name].label(name) for name in _CASELOAD_FIGURES),
                                shown.id, to_level, status, shown.accept_by, shown.arrive_by,
                                shown.overdue(at["now"]))
                 .join(Patient, Patient.id == Episode.patient_id)
                 .outerjoin(shown, shown.id == handoffs.newest_open_handoff(Episode.id))
                 .where(Episode.coach_id == sa.bindparam("coach_id", type_=sa.Uuid())))
    return constants_inline(statement, keep={"coach_id", *at}, dialect=dialect)


def _coach_rows(coach_id: uuid.UUID, now: dt.datetime):
    """Rows from the connection (the statement selects columns, not entities: the ORM has
    nothing to add to them). On PostgreSQL, on one plan made for every coach, by lookups: their
    open episodes, then a lookup per episode and figure (planning it for each request cost as
    much as running it). Only the request's audit event (inserts: no plan to choose) follows
    it."""
    connection = db.session.connection()
    plan_once_as_lookups(connection)
    return connection.execute(_coach_rows_statement(connection.dialect),
                              {"coach_id": coach_id, **_instants(now)}).all()


def _sort_key(entry: dict):
    # Ids compare as their text does (fixed-length hex), so the tie-break needs no string.
    reasons = entry["priority_reasons"]
    rank = RULES.index(reasons[0]) if reasons else len(RULES)
    return (rank, -len(reasons), entry["last_contact_at"] or _NEVER, entry["opened_at"], entry["episode_id"])


def caseload(*, coach_id: uuid.UUID, now: dt.datetime | None = None) -> list[dict]:
    """The coach's open episodes, most urgent first. An id that is no coach's is a 422, not an
    empty caseload that would read as "nothing to do" (a deactivated coach still has one).

    Rows are unpacked by position, in the statement's order (`_coach_rows_statement`): reading
    two dozen values a row by name took a tenth of the request."""
    coach = db.session.get(User, coach_id)
    if coach is None or coach.role != Role.COACH:
        raise Problem(422, "No coach has this id.", errors={"coach_id": ["Not a coach."]})
    now = now or utcnow()
    entries = []
    rows = _coach_rows(coach_id, now)  # last: it changes how the transaction's statements are planned
    for (episode_id, patient_id, level, opened_at, discharged_at, display_name, phone_invalid_at,
         last_contact_at, not_contacted_since_discharge, no_contact_7_days, next_task_due_at, overdue_tasks,
         next_appointment_at, missed_not_followed_up, handoff_overdue, unread_messages, back_in_ed,
         moud_covered_until, moud_supply_ending, *handoff) in rows:
        met = (back_in_ed, handoff_overdue, moud_supply_ending, overdue_tasks, not_contacted_since_discharge,
               missed_not_followed_up, phone_invalid_at is not None, unread_messages, no_contact_7_days)
        entries.append({
            "episode_id": episode_id,
            "patient_id": patient_id,
            "patient_display_name": display_name,
            "level": level,
            "priority_reasons": [rule for rule, is_met in zip(RULES, met) if is_met],  # in RULES' order
            "last_contact_at": last_contact_at,
            "next_task_due_at": next_task_due_at,
            "overdue_tasks": overdue_tasks,
            "next_appointment_at": next_appointment_at,
            "moud_covered_until": moud_covered_until,
            "unread_messages": unread_messages,
            "phone_invalid": phone_invalid_at is not None,
            "open_handoff": _open_handoff(*handoff),
            "discharged_at": discharged_at,
            "opened_at": opened_at,
        })
    entries.sort(key=_sort_key)
    audit.record("caseload.read", resource_type="user", resource_id=coach_id,
                 patient_ids=[e["patient_id"] for e in entries], details={"count": len(entries)})
    return entries


def _open_handoff(handoff_id, to_level, status, accept_by, arrive_by, overdue) -> dict | None:
    """An episode's newest open handoff as the caseload shows it (None without one)."""
    if handoff_id is None:
        return None
    return json_ready({"id": handoff_id, "to_level": to_level, "status": status,
                       "accept_by": accept_by, "arrive_by": arrive_by, "overdue": bool(overdue)})


def review(*, now: dt.datetime | None = None, list_limit: int = AT_RISK_LIST_LIMIT) -> dict:
    """Every coach's load, the unassigned episodes, and the patients at risk of being lost (the
    first `list_limit` of each list; `review_list` reads a whole list a page at a time).

    Built to stay quick with thousands of open episodes: one pass over them counts every coach's
    load and every list (`_open_episode_counts`); the figures of the few records that are late
    or unread are counted from those records; each list then reads only the episodes it shows,
    and not at all when it is empty."""
    now = now or utcnow()
    figures = _figures(now)
    coaches = db.session.execute(sa.select(User.id, User.display_name)  # rows, not ORM users: no per-row state
                                 .where(User.role == Role.COACH, User.active.is_(True))
                                 .order_by(User.display_name, User.id)).all()
    load, counts = _open_episode_counts(figures, now, coach_ids={coach.id for coach in coaches})
    rows = [{"coach_id": coach.id, "coach_display_name": coach.display_name, **load[coach.id]} for coach in coaches]
    lists = {name: _episode_list(where, counts[name], order=order, limit=list_limit)
             for name, (where, order) in _lists(figures).items()}
    patients = {e["patient_id"] for group in lists.values() for e in group["items"]}
    fell_back = db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.fell_back == sa.true(), Message.claimed_at >= now - LANGUAGE_FALLBACK_WINDOW))
    audit.record("caseloads.read", patient_ids=patients, details={"coaches": len(rows)})
    return {"coaches": rows, "unassigned": lists["unassigned"],
            "at_risk": {name: lists[name] for name in AT_RISK_LISTS},
            "texts": {"fell_back_to_english_30d": fell_back},
            "pending_access": [{"user_id": user.id, "username": user.username, "display_name": user.display_name,
                                "role": str(user.role), "granted_by_id": user.access_granted_by_id,
                                "granted_at": user.access_granted_at} for user in auth.pending_access()]}


def _lists(figures: dict) -> dict:
    """The review's lists: the rule an open episode meets to be on each, and the list's order."""
    # Unassigned: no coach, or a coach who has left (deactivated) — either way, nobody's list.
    has_active_coach = sa.exists().where(User.id == Episode.coach_id, User.role == Role.COACH,
                                         User.active.is_(True))
    return {"unassigned": (~has_active_coach, Episode.opened_at),
            "not_contacted_24h_after_discharge": (figures["not_contacted_since_discharge"], Episode.discharged_at),
            "no_clinic_visit_72h": (figures["no_clinic_visit_72h"], Episode.discharged_at),
            "moud_supply_ending": (figures["moud_supply_ending"], figures["moud_covered_until"]),
            "back_in_ed": (figures["back_in_ed"], figures["back_in_ed_at"])}


def review_list(name: str, *, cursor: str | None, limit: int,
                now: dt.datetime | None = None) -> tuple[list[dict], str | None]:
    """One of the review's lists (`unassigned` or one of `AT_RISK_LISTS`) in full, a page at a
    time in its order: longest waiting first. Audited as the review is."""
    now = now or utcnow()
    where, order = _lists(_figures(now))[name]
    episodes, next_cursor = keyset_page(_open_episodes(Episode).where(where), keys=[order, Episode.id],
                                        cursor=cursor, limit=limit, session=db.session)
    names = dict(db.session.execute(sa.select(Patient.id, Patient.display_name).where(
        Patient.id.in_({e.patient_id for e in episodes}))).all()) if episodes else {}
    items = [_item(e, names[e.patient_id]) for e in episodes]
    audit.record("caseloads.read", patient_ids=[e.patient_id for e in episodes],
                 details={"list": name, "count": len(items)})
    return items, next_cursor


def _item(episode, display_name: str) -> dict:
    """An episode as the review's lists show it."""
    return {"episode_id": episode.id, "patient_id": episode.patient_id, "patient_display_name": display_name,
            "coach_id": episode.coach_id, "level": str(episode.level), "opened_at": episode.opened_at,
            "discharged_at": episode.discharged_at}


def _open_episode_counts(figures: dict, now: dt.datetime, *, coach_ids: set) -> tuple[dict, collections.Counter]:
    """Each active coach's load (`LOAD`), and how many open episodes each list of the review
    has. One pass over the open episodes, grouped by coach and read from an index that covers
    it, counts the episodes and the rules they meet (a lookup each, in an index); overdue tasks
    and handoffs, unread replies and ending supplies are counted from their own records, which
    lets PostgreSQL join them in one go instead of looking them up episode by episode."""
    def number(rule: str):
        return sa.func.sum(sa.case((figures[rule], 1), else_=0)).label(rule)

    load = collections.defaultdict(lambda: dict.fromkeys(LOAD, 0))
    counts = collections.Counter()
    for row in db.session.execute(
            _open_episodes(Episode.coach_id, sa.func.count().label("active"), number("no_contact_7_days"),
                           number("not_contacted_since_discharge"), number("no_clinic_visit_72h"),
                           number("back_in_ed"))
            .group_by(Episode.coach_id)):
        if row.coach_id in coach_ids:
            load[row.coach_id].update(active=row.active, not_contacted_7d=int(row.no_contact_7_days))
        else:
            counts["unassigned"] += row.active
        counts.update(not_contacted_24h_after_discharge=int(row.not_contacted_since_discharge),
                      no_clinic_visit_72h=int(row.no_clinic_visit_72h), back_in_ed=int(row.back_in_ed))
    # Unread replies, counted by patient first: SQLite then starts from them (few, in a partial
    # index), not from every open episode.
    unread = (sa.select(Message.patient_id, sa.func.count().label("count")).where(Message.unread_reply)
              .group_by(Message.patient_id).subquery())
    of_open_episodes = {  # counted from their own records, by coach
        "overdue_tasks": sa.select(Episode.coach_id, sa.func.count()).select_from(Task)
        .join(Episode, Episode.id == Task.episode_id).where(Task.overdue(now)),
        "handoffs_overdue": sa.select(Episode.coach_id, sa.func.count(sa.distinct(Episode.id))).select_from(Handoff)
        .join(Episode, Episode.id == Handoff.episode_id).where(Handoff.overdue(now)),
        "unread": sa.select(Episode.coach_id, sa.func.sum(unread.c.count)).select_from(unread)
        .join(Episode, Episode.patient_id == unread.c.patient_id),
        "moud_supply_ending": sa.select(Episode.coach_id, sa.func.count()).select_from(MedicationSupply)
        .join(Episode, Episode.id == MedicationSupply.episode_id).where(continuity.ending_supply(now)),
    }
    for name, stmt in of_open_episodes.items():
        for coach_id, count in db.session.execute(stmt.where(Episode.is_open).group_by(Episode.coach_id)):
            if name in LOAD:
                load[coach_id][name] = count
            else:
                counts[name] += count
    return load, counts


def _episode_list(where, count: int, *, order, limit: int) -> dict:
    """The first `limit` of the `count` open episodes that match, in `order`: the matching ids
    first (from the indexes alone where they can), then those episodes' rows and names."""
    if not count:
        return {"count": 0, "items": []}
    first = (_open_episodes(Episode.id, order.label("position")).where(where)
             .order_by(order, Episode.id).limit(limit).subquery())
    rows = db.session.execute(
        sa.select(Episode.id, Episode.patient_id, Episode.coach_id, Episode.level, Episode.opened_at,
                  Episode.discharged_at, Patient.display_name)
        .join(first, first.c.id == Episode.id).join(Patient, Patient.id == Episode.patient_id)
        .order_by(first.c.position, first.c.id)).all()
    return {"count": count, "items": [_item(row, row.display_name) for row in rows]}
