"""What the hospital's ADT feed tells Bridgeline: every message received (its control id, for
idempotency, and the ACK it got) and the hospital visits of known patients.

A message is one row of `hl7_messages`, unique on (sender, MSH-10): a resent message finds its
row and gets the stored ACK again, changing nothing. A hospital visit (`hospital_visits`) is one
ED registration or admission of a patient Bridgeline knows (A04/A01), with the discharge the
A03 reports; visits are what the back-in-ED alert and the revisit measures read.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.database import UUIDPrimaryKey, utcnow
from backend.extensions import db


class MessageOutcome(enum.StrEnum):
    """What a received message did (the metrics count messages by it)."""

    #: Acted upon: a visit recorded, a discharge recorded, a back-in-ED alert raised.
    PROCESSED = "processed"
    #: The MRN is not on file: acknowledged, nothing created.
    UNKNOWN_PATIENT = "unknown_patient"
    #: What it reports is already recorded (another message of the same visit or discharge).
    DUPLICATE = "duplicate"
    #: A discharge time other than the one recorded: the first stays, a task asks clinic staff to check.
    DISCHARGE_DIFFERS = "discharge_differs"
    #: A message type Bridgeline does not act on (acknowledged AA).
    IGNORED = "ignored"
    #: Refused with AE (a field missing or impossible) or AR (not a message Bridgeline can read).
    ERROR = "error"
    REJECTED = "rejected"


class Hl7Message(UUIDPrimaryKey, db.Model):
    """One received HL7 v2 message (never its content: the ids, type, outcome and ACK)."""

    __tablename__ = "hl7_messages"
    __table_args__ = (sa.UniqueConstraint("sender", "control_id", name="uq_hl7_messages_sender_control_id"),)

    #: MSH-3 and MSH-4 (sending application and facility), as `app|facility`.
    sender: Mapped[str] = mapped_column(sa.String(200))
    #: MSH-10, the message control id.
    control_id: Mapped[str] = mapped_column(sa.String(200))
    #: MSH-9, e.g. `ADT^A04`.
    message_type: Mapped[str] = mapped_column(sa.String(40))
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: The interface account that sent it.
    received_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    outcome: Mapped[str] = mapped_column(sa.String(30))
    patient_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("patients.id"))
    #: The ACK answered, exactly (ER7): a resent message gets it again.
    ack: Mapped[str] = mapped_column(sa.Text)


class VisitSetting(enum.StrEnum):
    EMERGENCY_DEPARTMENT = "emergency_department"
    INPATIENT = "inpatient"


class HospitalVisit(UUIDPrimaryKey, db.Model):
    """An ED registration (A04) or admission (A01) of a known patient, and its discharge (A03)."""

    __tablename__ = "hospital_visits"
    __table_args__ = (sa.Index("ix_hospital_visits_patient_registered", "patient_id", "registered_at"),
                      sa.Index("ix_hospital_visits_episode_back", "episode_id", "back_in_ed", "registered_at"))

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"))
    #: The episode the visit concerns: the open one it discharged, or the one it alerted.
    episode_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("episodes.id"))
    #: PV1-19, the hospital's visit number (when sent): matches the A03 to its A04.
    visit_number: Mapped[str | None] = mapped_column(sa.String(64))
    #: emergency_department or inpatient (PV1-2 patient class; the event when PV1-2 is empty).
    setting: Mapped[str] = mapped_column(sa.String(30))
    #: PV1-44 (admit time), else EVN-2, else MSH-7.
    registered_at: Mapped[dt.datetime]
    #: PV1-45 and PV1-36 (mapped to a Disposition) from the A03.
    discharged_at: Mapped[dt.datetime | None]
    disposition: Mapped[str | None] = mapped_column(sa.String(30))
    #: An overdose: PV2-3 (admit reason) or a DG1-3 diagnosis coded ICD-10-CM T40.x.
    overdose: Mapped[bool] = mapped_column(default=False)
    #: The patient came back: their last episode had closed, or their open one was past discharge.
    back_in_ed: Mapped[bool] = mapped_column(default=False)
    #: The follow-up task the alert created (the coach's, or clinic staff's).
    task_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("tasks.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
