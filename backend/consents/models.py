"""42 CFR Part 2 consents, their revocations, and the disclosures made under them.

Consents and disclosures are append-only: a revocation is a row of its own, never an edit, and
a new consent supersedes an older one by being newer.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.database import UUIDPrimaryKey, utcnow
from backend.extensions import db

#: The kinds of information a consent may cover (and a disclosure may carry).
INFORMATION_KINDS = ("handoff_summary", "medications", "appointments", "diagnosis", "treatment_plan",
                     "contact_information")


class Consent(UUIDPrimaryKey, db.Model):
    """A patient's 42 CFR Part 2 consent to disclose to one recipient. Never edited: a
    revocation is a row of its own, and a new consent supersedes by being newer."""

    __tablename__ = "consents"

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    #: Who may disclose: the hospital's SUD program (Bridgeline's operator).
    disclosing_program: Mapped[str] = mapped_column(sa.String(200))
    #: The recipient: a program from the directory, or a named person or organisation.
    recipient_program_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("programs.id"))
    recipient_name: Mapped[str | None] = mapped_column(sa.String(200))
    purpose: Mapped[str] = mapped_column(sa.String(500))
    #: Kinds of information covered, e.g. ["handoff_summary", "medications", "appointments"].
    information: Mapped[list] = mapped_column(sa.JSON)
    signed_at: Mapped[dt.datetime]
    #: written or electronic
    signature_method: Mapped[str] = mapped_column(sa.String(20))
    expires_at: Mapped[dt.datetime | None]
    #: Ends when the episode open at signing closes.
    expires_on_end_of_treatment: Mapped[bool] = mapped_column(default=False)
    episode_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("episodes.id"))
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    revocation: Mapped[ConsentRevocation | None] = relationship(lazy="selectin")


class ConsentRevocation(UUIDPrimaryKey, db.Model):
    __tablename__ = "consent_revocations"

    consent_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("consents.id"), unique=True)
    revoked_at: Mapped[dt.datetime]
    #: written or electronic
    method: Mapped[str] = mapped_column(sa.String(20))
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class Disclosure(UUIDPrimaryKey, db.Model):
    """One disclosure of Part 2 information: what, to whom, when, under which consent, by whom."""

    __tablename__ = "disclosures"

    patient_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("patients.id"), index=True)
    consent_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("consents.id"))
    recipient_program_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("programs.id"))
    recipient_name: Mapped[str] = mapped_column(sa.String(200))
    information: Mapped[list] = mapped_column(sa.JSON)
    #: Exactly what was disclosed.
    content: Mapped[dict] = mapped_column(sa.JSON)
    #: The §2.32 notice that accompanied it.
    notice: Mapped[str] = mapped_column(sa.Text)
    handoff_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("handoffs.id"))
    disclosed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    disclosed_by_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"))
