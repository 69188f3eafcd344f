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

Each measure is an SQL expression over its member's facts (`backend.reports.facts`: instants as
milliseconds since 1970, and the report's `now`), so that the report is one aggregate query per
population however many episodes it covers. The facts are stored (`backend.reports.models`) and
kept up to date from the change feed (`backend.reports.refresh`); the classification is made
when the report is, and reads nothing but them. A measure's definition is its function's
docstring, up to the "Source:" line, which says where the measure comes from; the report shows
both.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import sqlalchemy as sa

from backend.cases.models import Level
from backend.handoffs.models import DEADLINE_PENDING_IN
from backend.outreach.models import MessageStatus
from backend.reports.facts import DAY, HOUR, earliest
from backend.reports.models import EpisodeFacts, HandoffFacts, TextFacts

#: A text that has left Bridgeline is decided once Twilio reports its fate, or this long after
#: it was sent without a report (counted as not delivered).
DELIVERY_REPORT_WAIT = 24 * HOUR

MET, MISSED, PENDING = 1, 0, -1


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
    #: Reported by language too (the SMS measures: the member's `language` fact).
    by_language: bool = False

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
             value: Callable[..., sa.ColumnElement] | None = None, by_language: bool = False) -> Callable:
    def register(classify: Callable[..., sa.ColumnElement]) -> Callable[..., sa.ColumnElement]:
        MEASURES[key] = Measure(key, population, window, classify, value, unit, by_language)
        return classify
    return register


def within(now, start, window: int, event) -> sa.ColumnElement:
    """MET when the event came in [start, start + window]; PENDING while that window is open."""
    return sa.case((now < start + window, PENDING),
                   (sa.and_(event.is_not(None), event >= start, event <= start + window), MET), else_=MISSED)


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
    return within(e.now, e.discharged, 30 * DAY, earliest(e.visit1, e.arrival))


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
                   (sa.and_(h.status.in_(DEADLINE_PENDING_IN["accept_by"]), h.now < h.accept_by), PENDING),
                   else_=MISSED)


@_measure("community_arrival_confirmed", population="handoffs", window="until the handoff's arrive-by")
def community_arrival_confirmed(h) -> sa.ColumnElement:
    """Closed-loop arrival rate: handoffs of the report's episodes to a community program whose
    arrival was confirmed (`completed`, with `arrived_at`), among those not cancelled before their
    arrive-by deadline. Pending while still open and the deadline is ahead; an arrival confirmed
    late still closes the loop.
    Source: product.md (closed-loop referral: arrival confirmed; default arrive-by 14 days)."""
    return sa.case((sa.or_(h.to_level != Level.COMMUNITY_PROGRAM, h.cancelled < h.arrive_by), None),
                   (h.arrived.is_not(None), MET),
                   (sa.and_(h.status.in_(DEADLINE_PENDING_IN["arrive_by"]), h.now < h.arrive_by), PENDING),
                   else_=MISSED)


# --- texts -----------------------------------------------------------------------------------

@_measure("texts_delivered", population="texts", window="24 h after sending for a delivery report",
          by_language=True)
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


@_measure("opted_out", population="episodes", window="from the first text to the report", by_language=True)
def opted_out(e) -> sa.ColumnElement:
    """Opt-out rate (lower is better): episodes whose patient opted out of texts (STOP, Twilio's
    21610, or staff recording it) after the episode's first text and before it closed, among
    episodes with a text sent. A patient who opted back in since is not counted.
    Source: product.md (SMS opt-out rate)."""
    opted_out_during = sa.and_(e.opted_out >= e.first_text, sa.or_(e.closed.is_(None), e.opted_out <= e.closed))
    return sa.case((e.first_text.is_(None), None), (opted_out_during, MET), else_=MISSED)


# --- continuity of treatment -----------------------------------------------------------------

def _naloxone_at_discharge(disposition: str) -> Callable[..., sa.ColumnElement]:
    def classify(e) -> sa.ColumnElement:
        in_population = sa.and_(e.from_ed.is_(True), e.presenting_reason == "overdose", e.disposition == disposition)
        return sa.case((~in_population, None),
                       (sa.and_(e.naloxone_trained.is_not(None), e.naloxone_trained <= e.discharged), MET),
                       else_=MISSED)
    return classify


def naloxone_at_discharge(e) -> sa.ColumnElement:
    """Naloxone at discharge after an overdose: among episodes that began in the ED with an
    overdose as the presenting reason and were discharged home, those with a naloxone kit given
    to the patient, with training recorded, at or before the discharge. Excluded: patients who
    left against medical advice, eloped, were transferred or admitted, died, or went elsewhere
    (`other`); discharges that did not say where the patient went (`unknown`, every discharge
    recorded before API 1.12) are counted apart, in naloxone_at_discharge_unknown_disposition.
    Decided at discharge: never pending.
    Source: ACEP's ED quality measure ECPR51 (naloxone prescribed or dispensed at discharge after
    an opioid overdose, with its exclusions); product.md (naloxone in hand)."""
    return _naloxone_at_discharge("home")(e)


def naloxone_at_discharge_unknown_disposition(e) -> sa.ColumnElement:
    """Naloxone at discharge after an overdose, for the discharges that did not say where the
    patient went (`unknown`): the same numerator as naloxone_at_discharge over the ED overdose
    episodes whose disposition is unknown, shown apart so that they neither hide in nor inflate
    the measure.
    Source: ACEP ECPR51 (as naloxone_at_discharge); the disposition was added in API 1.12."""
    return _naloxone_at_discharge("unknown")(e)


_measure("naloxone_at_discharge", population="episodes", window="at discharge")(naloxone_at_discharge)
_measure("naloxone_at_discharge_unknown_disposition", population="episodes",
         window="at discharge")(naloxone_at_discharge_unknown_disposition)

#: How long after an ED bridge ends its continuation still counts.
CONTINUATION_GRACE = 7 * DAY


def _days_without_coverage(e) -> sa.ColumnElement:
    """From the bridge's end to what continued it, when that came after the end (else NULL)."""
    return sa.case((e.moud_continued > e.bridge_ends, e.moud_continued - e.bridge_ends))


@_measure("medication_continued", population="episodes", window="until 7 days after the ED bridge ends",
          value=_days_without_coverage, unit="days")
def medication_continued(e) -> sa.ColumnElement:
    """Medication continued past the ED bridge: among episodes with a bridge prescription from
    the ED (their first one), those whose patient had a visit that can renew it (an attended
    transition-clinic visit, or an intake at an OTP or OBOT) or a next supply, at or after the
    bridge started and no later than 7 days after it ended (the end: midnight after its last
    covered date, in the patient's time zone). Pending until those 7 days are over. The value is
    the median days without coverage (from the end to the visit or the next supply's start)
    among the episodes continued after a gap; those continued in time have no gap to count.
    Source: product.md (medication continued past the bridge supply; the moment it ends with no
    prescriber visit is when patients are lost); D'Onofrio et al. 2015 (ED-initiated
    buprenorphine continued in treatment)."""
    return sa.case((e.bridge_ends.is_(None), None),
                   (e.now < e.bridge_ends + CONTINUATION_GRACE, PENDING),
                   (sa.and_(e.moud_continued.is_not(None), e.moud_continued <= e.bridge_ends + CONTINUATION_GRACE),
                    MET),
                   else_=MISSED)


# --- returns to the hospital (the ADT feed) --------------------------------------------------

@_measure("ed_revisit_30d", population="episodes", window="30 days after discharge")
def ed_revisit_30d(e) -> sa.ColumnElement:
    """ED revisit within 30 days of discharge (lower is better): episodes whose patient the
    hospital's ADT feed registered in the ED (A04) or admitted (A01) again after the discharge
    and no later than 30 days after it, among the report's episodes. Only hospitals that send
    their feed are counted: a return elsewhere is not known. Pending until the 30 days are over
    (a return already reported is then counted, not before).
    Source: product.md (ED revisits within 30 days; "Back in the ED"); revisits after an
    ED visit for opioid use are the outcome EDs track (e.g. Weiner et al. 2020)."""
    return within(e.now, e.discharged, 30 * DAY, e.revisit)


@_measure("overdose_revisit_90d", population="episodes", window="90 days after discharge")
def overdose_revisit_90d(e) -> sa.ColumnElement:
    """Repeat ED visit for an overdose within 90 days (lower is better): among episodes whose
    presenting reason was an overdose, those whose patient the ADT feed registered in the ED or
    admitted again for an overdose — PV2-3 (admit reason) or a DG1-3 diagnosis coded ICD-10-CM
    T40.x — after the discharge and no later than 90 days after it. Pending until the 90 days
    are over.
    Source: product.md (repeat overdose within 90 days); repeat overdose after a nonfatal one
    is the risk the program exists to lower (e.g. Olfson et al. 2018)."""
    return sa.case((e.presenting_reason != "overdose", None), else_=within(e.now, e.discharged, 90 * DAY,
                                                                           e.overdose_revisit))
