"""Builds a cohort row by row, with exact times, for the outcomes report's tests: the API cannot
backdate a handoff's acceptance or a text's delivery, and a report's answers depend on them."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid

from backend.cases.models import (
    Appointment,
    Encounter,
    Episode,
    Level,
    LevelPeriod,
    Patient,
)
from backend.continuity.models import MedicationSupply, NaloxoneEvent
from backend.extensions import db
from backend.handoffs.models import Handoff, HandoffEvent
from backend.outreach.models import Message

UTC = dt.timezone.utc
_numbers = itertools.count(1)


class Cohort:
    """Rows added to the session; call `db.session.flush()` (or complete the unit of work) after."""

    def __init__(self, *, nurse_id: uuid.UUID, coach_id: uuid.UUID) -> None:
        self.nurse_id, self.coach_id = nurse_id, coach_id

    def patient(self, timezone: str = "America/New_York") -> Patient:
        number = next(_numbers)
        patient = Patient(mrn=f"R{uuid.uuid4().hex[:10]}", given_name=f"Given{number}", family_name=f"Family{number}",
                          birth_date=dt.date(1980, 1, 1), timezone=timezone, registered_by_id=self.nurse_id)
        db.session.add(patient)
        return patient

    def episode(self, discharged_at: dt.datetime, *, patient: Patient | None = None,
                level: Level = Level.EMERGENCY_DEPARTMENT, reason: str = "overdose",
                coach_id: uuid.UUID | None = None, closed: bool = False) -> Episode:
        arrived = discharged_at - dt.timedelta(hours=6)
        episode = Episode(id=uuid.uuid4(), patient=patient or self.patient(), level=level, presenting_reason=reason,
                          arrived_at=arrived, opened_at=arrived, opened_by_id=self.nurse_id,
                          coach_id=coach_id or self.coach_id, discharged_at=discharged_at,
                          status="closed" if closed else "open", closed_at=discharged_at + dt.timedelta(days=2)
                          if closed else None, close_reason="other" if closed else None)
        db.session.add(episode)
        db.session.add(LevelPeriod(episode_id=episode.id, level=level, started_at=arrived))
        db.session.flush()
        return episode

    def contact(self, episode: Episode, at: dt.datetime, *, kind: str = "phone", outcome: str = "reached") -> None:
        db.session.add(Encounter(episode_id=episode.id, author_id=self.coach_id, kind=kind, outcome=outcome,
                                 occurred_at=at))

    def visit(self, episode: Episode, at: dt.datetime, *, kind: str = "transition_clinic",
              status: str = "attended") -> None:
        db.session.add(Appointment(episode_id=episode.id, kind=kind, starts_at=at, status=status,
                                   status_changed_at=at, created_by_id=self.coach_id))

    def handoff(self, episode: Episode, *, to_level: str, method: str, accept_by: dt.datetime,
                arrive_by: dt.datetime, events: list[tuple[str, dt.datetime]] = ()) -> None:
        """`events`: the transitions after `sent`, e.g. [("accepted", at), ("completed", at)]."""
        created = accept_by - dt.timedelta(hours=24)
        handoff = Handoff(id=uuid.uuid4(), episode_id=episode.id, from_level="emergency_department", to_level=to_level,
                          method=method, summary={"moud": "buprenorphine", "naloxone_given": True},
                          status=events[-1][0] if events else "sent", accept_by=accept_by, arrive_by=arrive_by,
                          arrived_at=next((at for status, at in events if status == "completed"), None),
                          created_by_id=self.nurse_id, created_at=created)
        db.session.add(handoff)
        db.session.flush()
        for seq, (status, at) in enumerate([("sent", created), *events], start=1):
            db.session.add(HandoffEvent(handoff_id=handoff.id, seq=seq, status=status, at=at, by_id=self.nurse_id))

    def text(self, episode: Episode, *, status: str, sent_at: dt.datetime | None,
             direction: str = "outbound", kind: str = "staff") -> None:
        at = sent_at or episode.discharged_at
        db.session.add(Message(patient_id=episode.patient_id, episode_id=episode.id, direction=direction,
                               kind="reply" if direction == "inbound" else kind, body="Checking in",
                               phone="+16175550100", status=status, send_at=at, sent_at=sent_at, status_at=at,
                               created_at=at, updated_at=at))

    def kit(self, episode: Episode, at: dt.datetime, *, recipient: str = "patient", training: bool = True,
            setting: str = "emergency_department", doses: int = 2) -> None:
        db.session.add(NaloxoneEvent(episode_id=episode.id, kind="given", occurred_at=at, recipient=recipient,
                                     product="nasal_4mg", doses=doses, training_given=training, setting=setting,
                                     recorded_by_id=self.nurse_id))

    def supply(self, episode: Episode, started_on: dt.date, days: int, *, kind: str = "bridge_prescription",
               source: str = "emergency_department") -> MedicationSupply:
        """A supply, its coverage computed in the patient's time zone as the API does."""
        import zoneinfo

        supply = MedicationSupply(episode_id=episode.id, medication="buprenorphine", kind=kind, source=source,
                                  started_on=started_on, days_supplied=days,
                                  covered_until=started_on + dt.timedelta(days=days - 1),
                                  timezone=episode.patient.timezone, recorded_by_id=self.nurse_id)
        supply.starts_at, supply.ends_at = supply.covers(zoneinfo.ZoneInfo(episode.patient.timezone))
        db.session.add(supply)
        db.session.flush()
        return supply
