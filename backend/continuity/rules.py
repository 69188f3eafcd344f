"""The "runs out" rule, written once for the caseload, the review and the clock.

A supply is *continued* when a visit that can renew the medication is booked (scheduled) or
attended between the supply's start and its end: a transition-clinic appointment, or a program
intake at an OTP or OBOT (the directory's services that prescribe or dispense medication for
OUD). An episode's latest supply (`models.latest_supply_of`) is *ending* when its coverage ends
within a given time (or has ended) and it is not continued. A later supply replaces it as the
latest, which clears the rule; so do booking such a visit and closing the episode (the read
models look at open episodes only).
"""

from __future__ import annotations

import datetime as dt
import functools

import sqlalchemy as sa

from backend.cases.models import Appointment, AppointmentKind, AppointmentStatus
from backend.continuity.models import MedicationSupply
from backend.programs.models import Program

#: The directory's services at which a program intake can continue the medication.
PRESCRIBING_SERVICES = ("otp", "obot")
#: The caseload shows a supply ending this far ahead (product.md: 48 h before).
ALERT_BEFORE_END = dt.timedelta(hours=48)
#: The clock escalates once, this far ahead of the end (product.md: 24 h before).
ESCALATE_BEFORE_END = dt.timedelta(hours=24)


@functools.cache
def _latest_supply() -> type[MedicationSupply]:
    """One alias for every read (aliasing a mapped class costs more than the rest of a figure)."""
    return sa.orm.aliased(MedicationSupply, name="latest_supply")


def latest_supply_id(episode_id) -> sa.ScalarSelect:
    """The id of the latest supply of `episode_id` (a column to correlate with)."""
    latest = _latest_supply()
    return (sa.select(latest.id).where(latest.episode_id == episode_id)
            .order_by(latest.started_on.desc(), latest.covered_until.desc(), latest.created_at.desc(),
                      latest.id.desc()).limit(1)
            # Correlated with the episode however deep the caller nests it (auto-correlation
            # looks at the enclosing SELECT only).
            .correlate_except(latest).scalar_subquery())


def covered_until(episode_id) -> sa.ScalarSelect:
    """The latest supply's last covered date (the patient's), or NULL without a supply."""
    return sa.select(MedicationSupply.covered_until).where(
        MedicationSupply.id == latest_supply_id(episode_id)).scalar_subquery()


def continued(supply=MedicationSupply) -> sa.ColumnElement[bool]:
    """A visit that can renew the medication is booked or attended before the supply ends."""
    prescriber = sa.exists().where(Program.id == Appointment.program_id,
                                   Program.service.in_(PRESCRIBING_SERVICES))
    return sa.exists().where(
        Appointment.episode_id == supply.episode_id,
        Appointment.status.in_([AppointmentStatus.SCHEDULED, AppointmentStatus.ATTENDED]),
        Appointment.starts_at >= supply.starts_at, Appointment.starts_at < supply.ends_at,
        sa.or_(Appointment.kind == AppointmentKind.TRANSITION_CLINIC,
               sa.and_(Appointment.kind == AppointmentKind.PROGRAM_INTAKE, prescriber)))


def ending(episode_id, now: dt.datetime | None, within: dt.timedelta = ALERT_BEFORE_END, *,
           by=None) -> sa.ColumnElement[bool]:
    """The episode's latest supply ends within `within` of `now` (or has ended), not continued;
    `by` gives that instant itself instead (`now + within`: a bound parameter, say)."""
    return sa.exists().where(MedicationSupply.id == latest_supply_id(episode_id),
                             _runs_out(now + within if by is None else by))


def ending_supply(now: dt.datetime, within: dt.timedelta = ALERT_BEFORE_END) -> sa.ColumnElement[bool]:
    """`ending`, said of a supply: it is its episode's latest, and it ends within `within` of
    `now` (or has ended), not continued. For counting from the supplies (few) rather than from
    every episode."""
    return sa.and_(MedicationSupply.id == latest_supply_id(MedicationSupply.episode_id), _runs_out(now + within))


def _runs_out(by) -> sa.ColumnElement[bool]:
    """The supply ends by `by` (an instant) and nothing booked continues it."""
    return sa.and_(MedicationSupply.ends_at <= by, ~continued())
