"""The outcomes report's facts: what it counts, extracted from the domains' records.

`facts` selects, for each reportable episode and for its handoffs and texts, what happened and
when: instants in milliseconds since 1970 (`HOUR` and `DAY` are their units), the same whatever
the report's `now`. `backend.reports.refresh` stores them (`backend.reports.models`) and
fingerprints this module's SQL, constants included, so that changing a definition here recounts
every stored fact. This is where the reports read the domains' models (the cases', handoffs' and
outreach tables); nothing else in `backend.reports` queries them except `refresh`, which selects
the episodes to recount. The measures (`backend.reports.measures`) classify the stored facts.
"""
from __future__ import annotations

import sqlalchemy as sa

from backend.cases.models import (
    HOSPITAL_LEVELS,
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    Encounter,
    Episode,
    Level,
    LevelPeriod,
    Patient,
    SmsStatus,
)
from backend.continuity.models import MedicationSupply, NaloxoneEvent, NaloxoneKind
from backend.continuity.rules import PRESCRIBING_SERVICES
from backend.database import epoch_ms
from backend.handoffs.models import Handoff, HandoffEvent, HandoffStatus
from backend.interop.models import HospitalVisit
from backend.outreach.models import (
    Message,
    MessageDirection,
    MessageKind,
    MessageStatus,
)
from backend.programs.models import Program
from backend.reports.models import EpisodeFacts, HandoffFacts, TextFacts

HOUR = 3_600_000  # ms
DAY = 24 * HOUR
#: Encounters that count as a follow-up (with the attended appointments).
FOLLOW_UP_ENCOUNTERS = ("in_person", "phone", "video")


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
    - closed: when the episode closed (an opt-out after it belongs to a later episode);
    - from_ed: the episode began in the ED; disposition: where the patient went (`unknown` when
      the discharge did not say);
    - naloxone_trained: the first kit given to the patient with training recorded;
    - bridge_starts, bridge_ends: the coverage of the episode's first bridge prescription from
      the ED (the earliest started); moud_continued: the first thing that continued it, at or
      after its start: an attended transition-clinic visit or intake at an OTP or OBOT, or the
      start of another supply that started on a later date;
    - revisit, overdose_revisit: the patient's first hospital visit the ADT feed reported (an ED
      registration or an admission, on whatever episode) registered after the discharge, and
      the first of those that was an overdose (ICD-10-CM T40.x).

    Handoffs: method, to_level, status, accept_by, arrive_by, accepted (the first acceptance),
    cancelled (the cancellation, if any), arrived. Texts: those Bridgeline tried to send (not
    queued, cancelled or blocked ones, nor the automatic answers to STOP and HELP), with their
    status, when they were tried, their language (a coach's own text: the patient's) and whether
    an automatic text fell back to English. Episodes carry the patient's language.
    """
    episodes = _materialized(sa.select(Episode.id, Episode.discharged_at, Episode.closed_at, Episode.patient_id,
                                       Episode.coach_id, Episode.presenting_reason, Episode.disposition)
                             .where(Episode.id.in_(episode_ids), reportable()), "fact_episodes")
    cohort = _cohort_of(episodes)
    tried = (sa.select(Message.id, Message.episode_id, Message.status, Message.sent_at,
                       sa.func.coalesce(Message.sent_at, Message.status_at).label("tried_at"),  # refused: no sent_at
                       # a coach's own text has no language of its own: the patient's
                       sa.func.coalesce(Message.language, Patient.language).label("language"), Message.fell_back,
                       *cohort)
             .join(episodes, episodes.c.id == Message.episode_id)
             .join(Patient, Patient.id == episodes.c.patient_id)
             .where(_of(Message, episodes), Message.direction == MessageDirection.OUTBOUND,
                    Message.kind != MessageKind.AUTO_REPLY,
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
                                 tried.c.status, epoch_ms(tried.c.tried_at).label("tried"), tried.c.language,
                                 tried.c.fell_back)}


def _of(model, episodes: sa.CTE) -> sa.ColumnElement[bool]:
    """Besides the join: SQLite then seeks each episode's rows through the model's episode_id
    index, instead of scanning the whole table and probing the episodes (seconds, for a
    refresh of a few hundred episodes)."""
    return model.episode_id.in_(sa.select(episodes.c.id))


def _cohort_of(rows) -> list[sa.ColumnElement]:
    """The episode's columns a report selects by, carried on every stored row."""
    return [rows.c.discharged_at, rows.c.coach_id, rows.c.presenting_reason]


def _episode_facts(episodes: sa.CTE, first_texts: sa.Subquery, handoffs: sa.Subquery) -> sa.Select:
    reached = Encounter.reached
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
    clinic = attended.c.kind == AppointmentKind.TRANSITION_CLINIC
    numbered = (sa.select(attended.c.episode_id, attended.c.kind, attended.c.at,
                          sa.func.row_number().over(partition_by=(attended.c.episode_id, clinic),
                                                    order_by=attended.c.at).label("n"),
                          sa.func.min(sa.case((clinic, attended.c.at))).over(partition_by=attended.c.episode_id)
                          .label("visit1"))
                .subquery("numbered"))
    clinic = numbered.c.kind == AppointmentKind.TRANSITION_CLINIC
    visits = (sa.select(numbered.c.episode_id, sa.func.min(numbered.c.at).label("visit"),
                        sa.func.min(numbered.c.visit1).label("visit1"),
                        sa.func.min(sa.case((sa.and_(clinic, numbered.c.n == 2), numbered.c.at))).label("visit2"),
                        sa.func.min(sa.case((sa.and_(clinic, numbered.c.at.between(
                            numbered.c.visit1 + 45 * DAY, numbered.c.visit1 + 75 * DAY)), numbered.c.at)))
                        .label("retained_visit"))
              .group_by(numbered.c.episode_id).subquery("visits"))
    arrivals = (sa.select(handoffs.c.episode_id, sa.func.min(handoffs.c.arrived_at).label("arrival"))
                .where(handoffs.c.to_level == Level.COMMUNITY_PROGRAM,
                       handoffs.c.arrived_at >= handoffs.c.discharged_at)
                .group_by(handoffs.c.episode_id).subquery("arrivals"))
    follow_up = earliest(epoch_ms(contacts.c.contact), visits.c.visit)
    naloxone, bridges = _naloxone_facts(episodes), _bridge_facts(episodes)

    def first_return(*conditions):
        return epoch_ms(sa.select(sa.func.min(HospitalVisit.registered_at)).where(
            HospitalVisit.patient_id == episodes.c.patient_id, HospitalVisit.registered_at > episodes.c.discharged_at,
            *conditions).scalar_subquery())
    from_ed = sa.exists().where(LevelPeriod.episode_id == episodes.c.id,
                                LevelPeriod.level == Level.EMERGENCY_DEPARTMENT)
    return (sa.select(episodes.c.id.label("episode_id"), *_cohort_of(episodes),
                      epoch_ms(episodes.c.discharged_at).label("discharged"),
                      epoch_ms(contacts.c.first_contact).label("first_contact"), follow_up.label("first_follow_up"),
                      visits.c.visit1, visits.c.visit2, visits.c.retained_visit,
                      epoch_ms(arrivals.c.arrival).label("arrival"),
                      epoch_ms(first_texts.c.first_text).label("first_text"),
                      sa.case((Patient.sms_status == SmsStatus.OPTED_OUT, epoch_ms(Patient.sms_status_at)))
                      .label("opted_out"),
                      epoch_ms(episodes.c.closed_at).label("closed"), Patient.language,
                      from_ed.label("from_ed"),
                      sa.func.coalesce(episodes.c.disposition, "unknown").label("disposition"),
                      naloxone.c.naloxone_trained, bridges.c.bridge_starts, bridges.c.bridge_ends,
                      bridges.c.moud_continued, first_return().label("revisit"),
                      first_return(HospitalVisit.overdose == sa.true()).label("overdose_revisit"))
            .select_from(episodes)
            .join(Patient, Patient.id == episodes.c.patient_id)
            .outerjoin(contacts, contacts.c.episode_id == episodes.c.id)
            .outerjoin(visits, visits.c.episode_id == episodes.c.id)
            .outerjoin(arrivals, arrivals.c.episode_id == episodes.c.id)
            .outerjoin(first_texts, first_texts.c.episode_id == episodes.c.id)
            .outerjoin(naloxone, naloxone.c.episode_id == episodes.c.id)
            .outerjoin(bridges, bridges.c.episode_id == episodes.c.id))


def _naloxone_facts(episodes: sa.CTE) -> sa.CTE:
    return (sa.select(NaloxoneEvent.episode_id,
                      epoch_ms(sa.func.min(NaloxoneEvent.occurred_at)).label("naloxone_trained"))
            .where(_of(NaloxoneEvent, episodes), NaloxoneEvent.kind == NaloxoneKind.GIVEN,
                   NaloxoneEvent.recipient == "patient", NaloxoneEvent.training_given.is_(True))
            .group_by(NaloxoneEvent.episode_id).cte("naloxone").prefix_with("MATERIALIZED"))


def _bridge_facts(episodes: sa.CTE) -> sa.Subquery:
    """The first ED bridge of each episode, and what continued it first."""
    ranked = (sa.select(MedicationSupply.id, MedicationSupply.episode_id, MedicationSupply.started_on,
                        MedicationSupply.starts_at, MedicationSupply.ends_at,
                        sa.func.row_number().over(partition_by=MedicationSupply.episode_id, order_by=(
                            MedicationSupply.started_on, MedicationSupply.created_at, MedicationSupply.id)).label("n"))
              .where(_of(MedicationSupply, episodes), MedicationSupply.kind == "bridge_prescription",
                     MedicationSupply.source == "emergency_department").subquery("ranked_bridges"))
    bridge = sa.select(ranked).where(ranked.c.n == 1).subquery("bridges")
    later = sa.orm.aliased(MedicationSupply, name="later_supply")
    next_supply = (sa.select(sa.func.min(later.starts_at)).where(
        later.episode_id == bridge.c.episode_id, later.id != bridge.c.id, later.started_on > bridge.c.started_on)
        .scalar_subquery())
    prescriber = sa.exists().where(Program.id == Appointment.program_id, Program.service.in_(PRESCRIBING_SERVICES))
    visit = (sa.select(sa.func.min(Appointment.starts_at)).where(
        Appointment.episode_id == bridge.c.episode_id, Appointment.status == AppointmentStatus.ATTENDED,
        Appointment.starts_at >= bridge.c.starts_at,
        sa.or_(Appointment.kind == AppointmentKind.TRANSITION_CLINIC,
               sa.and_(Appointment.kind == AppointmentKind.PROGRAM_INTAKE, prescriber))).scalar_subquery())
    # Each correlated subquery runs once per bridge (a materialized CTE: `earliest` repeats its
    # arguments), and the grouping (one row per episode already) lets SQLite index the result for
    # the join, which it does not for a CTE: without it the recount was quadratic.
    rows = _materialized(sa.select(bridge.c.episode_id, epoch_ms(bridge.c.starts_at).label("bridge_starts"),
                                   epoch_ms(bridge.c.ends_at).label("bridge_ends"),
                                   epoch_ms(next_supply).label("next_supply"), epoch_ms(visit).label("visit")),
                         "bridge_rows")
    return (sa.select(rows.c.episode_id, sa.func.min(rows.c.bridge_starts).label("bridge_starts"),
                      sa.func.min(rows.c.bridge_ends).label("bridge_ends"),
                      sa.func.min(earliest(rows.c.next_supply, rows.c.visit)).label("moud_continued"))
            .group_by(rows.c.episode_id).subquery("bridge_facts"))


def kits_distributed(period: tuple, coach_id=None, presenting_reason: str | None = None) -> sa.Select:
    """Naloxone kits given in the period (their `distributed_at`), whatever the episode's
    discharge: (setting, recipient, kits, doses). The report's filters apply to the episode the
    kit was logged on. Read from the log itself: a count of one indexed range, not a fact to store."""
    stmt = (sa.select(NaloxoneEvent.setting, NaloxoneEvent.recipient, sa.func.count().label("kits"),
                      sa.func.coalesce(sa.func.sum(NaloxoneEvent.doses), 0).label("doses"))
            .where(NaloxoneEvent.kind == NaloxoneKind.GIVEN, NaloxoneEvent.occurred_at >= period[0],
                   NaloxoneEvent.occurred_at < period[1])
            .group_by(NaloxoneEvent.setting, NaloxoneEvent.recipient)
            .order_by(NaloxoneEvent.setting, NaloxoneEvent.recipient))
    if coach_id is not None or presenting_reason is not None:
        stmt = stmt.join(Episode, Episode.id == NaloxoneEvent.episode_id)
        if coach_id is not None:
            stmt = stmt.where(Episode.coach_id == coach_id)
        if presenting_reason is not None:
            stmt = stmt.where(Episode.presenting_reason == presenting_reason)
    return stmt


def _handoff_facts(handoffs: sa.Subquery) -> sa.Select:
    def first(status: str):
        return sa.func.min(sa.case((HandoffEvent.status == status, HandoffEvent.at)))

    h = handoffs.c
    return (sa.select(h.id.label("handoff_id"), h.episode_id, *_cohort_of(handoffs), h.method, h.to_level, h.status,
                      epoch_ms(h.accept_by).label("accept_by"), epoch_ms(h.arrive_by).label("arrive_by"),
                      epoch_ms(first(HandoffStatus.ACCEPTED)).label("accepted"),
                      epoch_ms(first(HandoffStatus.CANCELLED)).label("cancelled"),
                      epoch_ms(h.arrived_at).label("arrived"))
            .select_from(handoffs)
            .outerjoin(HandoffEvent, sa.and_(
                HandoffEvent.handoff_id == h.id,
                HandoffEvent.status.in_([HandoffStatus.ACCEPTED, HandoffStatus.CANCELLED])))
            .group_by(h.id, h.episode_id, *_cohort_of(handoffs), h.method, h.to_level, h.status, h.accept_by,
                      h.arrive_by, h.arrived_at))


def _materialized(stmt: sa.Select, name: str) -> sa.CTE:
    """A CTE computed once however often it is read (both databases would otherwise inline it,
    repeating its subqueries for every reference)."""
    return stmt.cte(name).prefix_with("MATERIALIZED")


def earliest(a, b) -> sa.ColumnElement:
    """The earlier of two instants, either of which may be NULL (SQL's min() and least() differ)."""
    return sa.case((a.is_(None), b), (b.is_(None), a), (a <= b, a), else_=b)
