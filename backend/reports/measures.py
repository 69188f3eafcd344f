"""The program measures (product.md, "Measures the program is judged by"), each defined once.

A measure looks at one population — the report's episodes, their handoffs, or their texts —
and classifies each member, as of the moment the report is made (`now`):

- MET: counted in the numerator and the denominator;
- MISSED: counted in the denominator only;
- PENDING: its window has not closed yet: reported as `pending`, left out of the denominator
  (whether or not it has already met the measure, so that early successes do not inflate the
  rate while the failures are still waiting);
- excluded (NULL): not part of the measure's population (e.g. a cancelled handoff).

The report's episodes are those opened at the ED or inpatient level whose discharge falls in the
period. Windows run from the discharge (or, for retention, from the first visit) and include
their end: a contact exactly 24 h after discharge is within 24 h. Times are instants, counted in
milliseconds, so daylight-saving changes do not stretch a window. A patient with several
episodes counts once per episode, and only what is recorded on an episode counts for it.

Each measure is an SQL expression over its member's facts (`facts` below: instants as
milliseconds since 1970, and the report's `now`), so that the report is one aggregate query per
population however many episodes it covers. The facts are stored (`backend.reports.models`) and
kept up to date from the change feed (`backend.reports.refresh`); the classification is made
when the report is. A measure's definition is its function's docstring, up to the "Source:"
line, which says where the measure comes from; the report shows both.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import sqlalchemy as sa

from backend.cases.models import (
    HOSPITAL_LEVELS,
    Appointment,
    AppointmentStatus,
    Encounter,
    Episode,
    LevelPeriod,
    Patient,
    SmsStatus,
)
from backend.database import epoch_ms
from backend.handoffs.models import Handoff, HandoffEvent
from backend.outreach.models import Message, MessageKind, MessageStatus
from backend.reports.models import EpisodeFacts, HandoffFacts, TextFacts

HOUR = 3_600_000  # ms
DAY = 24 * HOUR
#: A text that has left Bridgeline is decided once Twilio reports its fate, or this long after
#: it was sent without a report (counted as not delivered).
DELIVERY_REPORT_WAIT = 24 * HOUR

MET, MISSED, PENDING = 1, 0, -1
#: Encounters that count as a follow-up (with the attended appointments).
FOLLOW_UP_ENCOUNTERS = ("in_person", "phone", "video")


@dataclasses.dataclass(frozen=True)
class Measure:
    key: str
    #: "episodes", "handoffs" or "texts"
    population: str
    #: For people: what the window is.
    window: str
    #: The facts → MET, MISSED, PENDING or NULL (excluded), as an SQL expression.
    classify: Callable[..., sa.ColumnElement]
    #: For measures that report a figure besides the rate: the member's value in ms (its
    #: median over the members MET is reported, in `unit`).
    value: Callable[..., sa.ColumnElement] | None = None
    unit: str | None = None

    @property
    def definition(self) -> str:
        return _docstring(self.classify).split("Source:")[0].strip()

    @property
    def source(self) -> str:
        return _docstring(self.classify).partition("Source:")[2].strip()


def _docstring(function: Callable) -> str:
    return " ".join(inspect.cleandoc(function.__doc__ or "").split())


MEASURES: dict[str, Measure] = {}
#: Each population's stored facts.
POPULATIONS = {"episodes": EpisodeFacts, "handoffs": HandoffFacts, "texts": TextFacts}


def _measure(key: str, *, population: str, window: str, unit: str | None = None,
             value: Callable[..., sa.ColumnElement] | None = None) -> Callable:
    def register(classify: Callable[..., sa.ColumnElement]) -> Callable[..., sa.ColumnElement]:
        MEASURES[key] = Measure(key, population, window, classify, value, unit)
        return classify
    return register


def within(now, start, window: int, event) -> sa.ColumnElement:
    """MET when the event came in [start, start + window]; PENDING while that window is open."""
    return sa.case((now < start + window, PENDING),
                   (sa.and_(event.is_not(None), event >= start, event <= start + window), MET), else_=MISSED)


# --- the facts -------------------------------------------------------------------------------

def reportable() -> sa.ColumnElement[bool]:
    """The episodes a report may count: discharged, after an ED or inpatient stay."""
    return sa.and_(Episode.discharged_at.is_not(None), sa.exists().where(
        LevelPeriod.episode_id == Episode.id, LevelPeriod.level.in_(HOSPITAL_LEVELS)))


def facts(episode_ids: sa.Select) -> dict[type, sa.Select]:
    """The facts of the reportable episodes among `episode_ids`, and of their handoffs and texts:
    a select per table of `backend.reports.models`, its columns named as the table's. They do
    not depend on when the report is made (`now` is added when it is).

    Episodes:
    - first_contact: the first encounter with outcome `reached` at or after the discharge;
    - first_follow_up: the first attended appointment of any kind, or reached encounter in
      person, by phone or by video, at or after the discharge;
    - visit1, visit2: the first two attended transition-clinic visits at or after the discharge;
      retained_visit: one 45 to 75 days after visit1;
    - arrival: the first confirmed arrival at a community program (a handoff's `arrived_at`);
    - first_text: when the episode's first text left Bridgeline;
    - opted_out: when the patient opted out of texts, if that is their status now;
    - closed: when the episode closed (an opt-out after it belongs to a later episode).

    Handoffs: method, to_level, status, accept_by, arrive_by, accepted (the first acceptance),
    cancelled (the cancellation, if any), arrived. Texts: those Bridgeline tried to send (not
    queued, cancelled or blocked ones, nor the automatic answers to STOP and HELP), with their
    status and when they were tried.
    """
    episodes = _materialized(sa.select(Episode.id, Episode.discharged_at, Episode.closed_at, Episode.patient_id,
                                       Episode.coach_id, Episode.presenting_reason)
                             .where(Episode.id.in_(episode_ids), reportable()), "fact_episodes")
    cohort = _cohort_of(episodes)
    tried = (sa.select(Message.id, Message.episode_id, Message.status, Message.sent_at,
                       sa.func.coalesce(Message.sent_at, Message.status_at).label("tried_at"),  # refused: no sent_at
                       *cohort)
             .join(episodes, episodes.c.id == Message.episode_id)
             .where(_of(Message, episodes), Message.direction == "outbound", Message.kind != MessageKind.AUTO_REPLY,
                    Message.status.not_in([MessageStatus.QUEUED, MessageStatus.CANCELLED, MessageStatus.BLOCKED]))
             .subquery("tried"))
    handoffs = (sa.select(Handoff.id, Handoff.episode_id, Handoff.method, Handoff.to_level, Handoff.status,
                          Handoff.accept_by, Handoff.arrive_by, Handoff.arrived_at, *cohort)
                .join(episodes, episodes.c.id == Handoff.episode_id).where(_of(Handoff, episodes))
                .subquery("cohort_handoffs"))
    first_texts = (sa.select(tried.c.episode_id, sa.func.min(tried.c.sent_at).label("first_text"))
                   .group_by(tried.c.episode_id).subquery("first_texts"))
    return {EpisodeFacts: _episode_facts(episodes, first_texts, handoffs),
            HandoffFacts: _handoff_facts(handoffs),
            TextFacts: sa.select(tried.c.id.label("message_id"), tried.c.episode_id, *_cohort_of(tried),
                                 tried.c.status, epoch_ms(tried.c.tried_at).label("tried"))}


def _of(model, episodes: sa.CTE) -> sa.ColumnElement[bool]:
    """Besides the join: SQLite then seeks each episode's rows through the model's episode_id
    index, instead of scanning the whole table and probing the episodes (seconds, for a
    refresh of a few hundred episodes)."""
    return model.episode_id.in_(sa.select(episodes.c.id))


def _cohort_of(rows) -> list[sa.ColumnElement]:
    """The episode's columns a report selects by, carried on every stored row."""
    return [rows.c.discharged_at, rows.c.coach_id, rows.c.presenting_reason]


def _episode_facts(episodes: sa.CTE, first_texts: sa.Subquery, handoffs: sa.Subquery) -> sa.Select:
    reached = Encounter.outcome == "reached"
    contacts = (sa.select(Encounter.episode_id,
                          sa.func.min(sa.case((reached, Encounter.occurred_at))).label("first_contact"),
                          sa.func.min(sa.case((sa.and_(reached, Encounter.kind.in_(FOLLOW_UP_ENCOUNTERS)),
                                               Encounter.occurred_at))).label("contact"))
                .join(episodes, episodes.c.id == Encounter.episode_id)
                .where(_of(Encounter, episodes), Encounter.occurred_at >= episodes.c.discharged_at)
                .group_by(Encounter.episode_id).subquery("contacts"))
    attended = (sa.select(Appointment.episode_id, Appointment.kind, epoch_ms(Appointment.starts_at).label("at"))
                .join(episodes, episodes.c.id == Appointment.episode_id)
                .where(_of(Appointment, episodes), Appointment.status == AppointmentStatus.ATTENDED,
                       Appointment.starts_at >= episodes.c.discharged_at).subquery("attended"))
    clinic = attended.c.kind == "transition_clinic"
    numbered = (sa.select(attended.c.episode_id, attended.c.kind, attended.c.at,
                          sa.func.row_number().over(partition_by=(attended.c.episode_id, clinic),
                                                    order_by=attended.c.at).label("n"),
                          sa.func.min(sa.case((clinic, attended.c.at))).over(partition_by=attended.c.episode_id)
                          .label("visit1"))
                .subquery("numbered"))
    clinic = numbered.c.kind == "transition_clinic"
    visits = (sa.select(numbered.c.episode_id, sa.func.min(numbered.c.at).label("visit"),
                        sa.func.min(numbered.c.visit1).label("visit1"),
                        sa.func.min(sa.case((sa.and_(clinic, numbered.c.n == 2), numbered.c.at))).label("visit2"),
                        sa.func.min(sa.case((sa.and_(clinic, numbered.c.at.between(
                            numbered.c.visit1 + 45 * DAY, numbered.c.visit1 + 75 * DAY)), numbered.c.at)))
                        .label("retained_visit"))
              .group_by(numbered.c.episode_id).subquery("visits"))
    arrivals = (sa.select(handoffs.c.episode_id, sa.func.min(handoffs.c.arrived_at).label("arrival"))
                .where(handoffs.c.to_level == "community_program",
                       handoffs.c.arrived_at >= handoffs.c.discharged_at)
                .group_by(handoffs.c.episode_id).subquery("arrivals"))
    follow_up = _earliest(epoch_ms(contacts.c.contact), visits.c.visit)
    return (sa.select(episodes.c.id.label("episode_id"), *_cohort_of(episodes),
                      epoch_ms(episodes.c.discharged_at).label("discharged"),
                      epoch_ms(contacts.c.first_contact).label("first_contact"), follow_up.label("first_follow_up"),
                      visits.c.visit1, visits.c.visit2, visits.c.retained_visit,
                      epoch_ms(arrivals.c.arrival).label("arrival"),
                      epoch_ms(first_texts.c.first_text).label("first_text"),
                      sa.case((Patient.sms_status == SmsStatus.OPTED_OUT, epoch_ms(Patient.sms_status_at)))
                      .label("opted_out"),
                      epoch_ms(episodes.c.closed_at).label("closed"))
            .select_from(episodes)
            .join(Patient, Patient.id == episodes.c.patient_id)
            .outerjoin(contacts, contacts.c.episode_id == episodes.c.id)
            .outerjoin(visits, visits.c.episode_id == episodes.c.id)
            .outerjoin(arrivals, arrivals.c.episode_id == episodes.c.id)
            .outerjoin(first_texts, first_texts.c.episode_id == episodes.c.id))


def _handoff_facts(handoffs: sa.Subquery) -> sa.Select:
    def first(status: str):
        return sa.func.min(sa.case((HandoffEvent.status == status, HandoffEvent.at)))

    h = handoffs.c
    return (sa.select(h.id.label("handoff_id"), h.episode_id, *_cohort_of(handoffs), h.method, h.to_level, h.status,
                      epoch_ms(h.accept_by).label("accept_by"), epoch_ms(h.arrive_by).label("arrive_by"),
                      epoch_ms(first("accepted")).label("accepted"), epoch_ms(first("cancelled")).label("cancelled"),
                      epoch_ms(h.arrived_at).label("arrived"))
            .select_from(handoffs)
            .outerjoin(HandoffEvent, sa.and_(HandoffEvent.handoff_id == h.id,
                                             HandoffEvent.status.in_(["accepted", "cancelled"])))
            .group_by(h.id, h.episode_id, *_cohort_of(handoffs), h.method, h.to_level, h.status, h.accept_by,
                      h.arrive_by, h.arrived_at))


def _materialized(stmt: sa.Select, name: str) -> sa.CTE:
    """A CTE computed once however often it is read (both databases would otherwise inline it,
    repeating its subqueries for every reference)."""
    return stmt.cte(name).prefix_with("MATERIALIZED")


def _earliest(a, b) -> sa.ColumnElement:
    """The earlier of two instants, either of which may be NULL (SQL's min() and least() differ)."""
    return sa.case((a.is_(None), b), (b.is_(None), a), (a <= b, a), else_=b)


# --- contact and the first visit -------------------------------------------------------------

@_measure("contacted_24h", population="episodes", window="24 h after discharge")
def contacted_24h(e) -> sa.ColumnElement:
    """Reached by a coach within 24 h of discharge: an encounter with outcome `reached`, any kind,
    between the discharge and 24 h after it.
    Source: product.md; the risk of death peaks in the first 2 days after an overdose visit
    (Weiner et al. 2020, Ann Emerg Med), and programs aim for contact within 24-72 h."""
    return within(e.now, e.discharged, 24 * HOUR, e.first_contact)


@_measure("contacted_72h", population="episodes", window="72 h after discharge")
def contacted_72h(e) -> sa.ColumnElement:
    """Reached by a coach within 72 h of discharge: an encounter with outcome `reached`, any kind,
    between the discharge and 72 h after it.
    Source: product.md (contact within 24-72 h after discharge is the norm programs aim for)."""
    return within(e.now, e.discharged, 72 * HOUR, e.first_contact)


@_measure("clinic_visit_72h", population="episodes", window="72 h after discharge")
def clinic_visit_72h(e) -> sa.ColumnElement:
    """First transition-clinic visit attended within 72 h of discharge: an appointment of kind
    `transition_clinic`, status `attended`, starting between the discharge and 72 h after it.
    Source: product.md (first clinic visit ideally within 72 h; the ED-to-clinic handoff's default
    arrive-by)."""
    return within(e.now, e.discharged, 72 * HOUR, e.visit1)


@_measure("clinic_visit_7d", population="episodes", window="7 days after discharge")
def clinic_visit_7d(e) -> sa.ColumnElement:
    """First transition-clinic visit attended within 7 days of discharge: an attended
    `transition_clinic` appointment starting between the discharge and 7 days after it.
    Source: product.md."""
    return within(e.now, e.discharged, 7 * DAY, e.visit1)


def _to_first_visit(e) -> sa.ColumnElement:
    return e.visit1 - e.discharged


@_measure("median_hours_to_first_visit", population="episodes", window="30 days after discharge",
          value=_to_first_visit, unit="hours")
def median_hours_to_first_visit(e) -> sa.ColumnElement:
    """Median time from discharge to the first attended transition-clinic visit, in hours, over
    the episodes whose first visit came within 30 days of discharge (the numerator); the rate is
    the share of episodes with a first visit within those 30 days. Episodes without a visit have
    no time to count, so this median is of those who came, and should be read beside the rate.
    Source: product.md (median time ED discharge to first visit); 30 days, the window of the
    treatment-engagement measure, so that a late first visit does not wait forever."""
    return within(e.now, e.discharged, 30 * DAY, e.visit1)


# --- engagement and retention ----------------------------------------------------------------

@_measure("engaged_2_visits", population="episodes", window="30 days after discharge")
def engaged_2_visits(e) -> sa.ColumnElement:
    """Engaged: at least 2 attended transition-clinic visits within 30 days of discharge. The
    brief gives no window; 30 days is the bridge clinic's usual length of stay and the window of
    the treatment-engagement measure.
    Source: product.md (engagement, at least 2 attended clinic visits)."""
    return within(e.now, e.discharged, 30 * DAY, e.visit2)


@_measure("treatment_engaged_30d", population="episodes", window="30 days after discharge")
def treatment_engaged_30d(e) -> sa.ColumnElement:
    """Engaged in treatment at 30 days: a transition-clinic visit attended, or arrival at a
    community program confirmed, within 30 days of discharge.
    Source: D'Onofrio et al. 2015, JAMA (engaged in formal addiction treatment 30 days after
    randomization: 78% with ED-initiated buprenorphine against 37% with referral)."""
    return within(e.now, e.discharged, 30 * DAY, _earliest(e.visit1, e.arrival))


def _follow_up(days: int) -> Callable[..., sa.ColumnElement]:
    def classify(e) -> sa.ColumnElement:
        return within(e.now, e.discharged, days * DAY, e.first_follow_up)
    classify.__doc__ = f"""Follow-up within {days} days of discharge: an attended appointment of any kind
    (transition clinic, program intake, other) or a reached encounter in person, by phone or by video,
    between the discharge and {days} days after it. Texts do not count.
    Source: HEDIS FUA (Follow-Up After Emergency Department Visit for Substance Use, 7- and 30-day
    rates), counted from the discharge instant rather than the visit date; a recovery coach's contact
    counts as HEDIS counts peer support services."""
    return classify


_measure("follow_up_7d", population="episodes", window="7 days after discharge")(_follow_up(7))
_measure("follow_up_30d", population="episodes", window="30 days after discharge")(_follow_up(30))


@_measure("retained_60d", population="episodes", window="45-75 days after the first clinic visit")
def retained_60d(e) -> sa.ColumnElement:
    """Retained at 60 days: among episodes with a first attended transition-clinic visit, another
    attended visit 45 to 75 days (inclusive) after that first one. Pending until 75 days after
    the first visit.
    Source: the MGH Bridge Clinic's 60-day retention (a visit 45-75 days after the first), as
    product.md cites it."""
    return sa.case((e.visit1.is_(None), None),
                   else_=within(e.now, e.visit1 + 45 * DAY, 30 * DAY, e.retained_visit))


# --- handoffs --------------------------------------------------------------------------------

@_measure("warm_handoffs", population="handoffs", window="at the handoff")
def warm_handoffs(h) -> sa.ColumnElement:
    """Warm-handoff share: handoffs of the report's episodes made face to face, by phone or by
    video with the patient present (`warm_in_person`, `warm_phone`, `warm_video`) among all their
    handoffs except those cancelled before their accept-by deadline (withdrawn in time).
    Source: product.md; D'Onofrio et al. 2015 (a warm link to care beats a referral the patient
    must act on alone)."""
    return sa.case((h.cancelled < h.accept_by, None),
                   (h.method.in_(["warm_in_person", "warm_phone", "warm_video"]), MET), else_=MISSED)


@_measure("handoffs_accepted_on_time", population="handoffs", window="until the handoff's accept-by")
def handoffs_accepted_on_time(h) -> sa.ColumnElement:
    """Handoffs accepted by their accept-by deadline, among handoffs of the report's episodes that
    were accepted, declined, or not accepted by then. One cancelled before its deadline without
    being accepted is left out; one cancelled after it (as closing an episode cancels its open
    handoffs) was not accepted in time. Pending while open and the deadline is ahead.
    Source: product.md (handoffs accepted on time; defaults: 24 h to the clinic, 72 h to a
    community program)."""
    return sa.case((h.accepted <= h.accept_by, MET), (h.accepted.is_not(None), MISSED),
                   (h.cancelled < h.accept_by, None),
                   (sa.and_(h.status == "sent", h.now < h.accept_by), PENDING), else_=MISSED)


@_measure("community_arrival_confirmed", population="handoffs", window="until the handoff's arrive-by")
def community_arrival_confirmed(h) -> sa.ColumnElement:
    """Closed-loop arrival rate: handoffs of the report's episodes to a community program whose
    arrival was confirmed (`completed`, with `arrived_at`), among those not cancelled before their
    arrive-by deadline. Pending while still open and the deadline is ahead; an arrival confirmed
    late still closes the loop.
    Source: product.md (closed-loop referral: arrival confirmed; default arrive-by 14 days)."""
    return sa.case((sa.or_(h.to_level != "community_program", h.cancelled < h.arrive_by), None),
                   (h.arrived.is_not(None), MET),
                   (sa.and_(h.status.in_(["sent", "accepted"]), h.now < h.arrive_by), PENDING), else_=MISSED)


# --- texts -----------------------------------------------------------------------------------

@_measure("texts_delivered", population="texts", window="24 h after sending for a delivery report")
def texts_delivered(t) -> sa.ColumnElement:
    """SMS delivery rate: texts to the report's episodes' patients that Twilio reported
    `delivered`, among those Bridgeline tried to send (not queued, cancelled or blocked ones, nor
    the automatic answers to STOP and HELP). Undelivered and failed texts (refused by Twilio
    included) are misses, as is a text with no delivery report 24 h after it was tried; before
    then it is pending.
    Source: product.md (SMS delivery rate)."""
    failed = t.status.in_([MessageStatus.UNDELIVERED, MessageStatus.FAILED])
    return sa.case((t.status == MessageStatus.DELIVERED, MET),
                   (sa.or_(failed, t.tried <= t.now - DELIVERY_REPORT_WAIT), MISSED), else_=PENDING)


@_measure("opted_out", population="episodes", window="from the first text to the report")
def opted_out(e) -> sa.ColumnElement:
    """Opt-out rate (lower is better): episodes whose patient opted out of texts (STOP, Twilio's
    21610, or staff recording it) after the episode's first text and before it closed, among
    episodes with a text sent. A patient who opted back in since is not counted.
    Source: product.md (SMS opt-out rate)."""
    opted_out_during = sa.and_(e.opted_out >= e.first_text, sa.or_(e.closed.is_(None), e.opted_out <= e.closed))
    return sa.case((e.first_text.is_(None), None), (opted_out_during, MET), else_=MISSED)
