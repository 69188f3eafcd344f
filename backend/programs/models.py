"""The directory of community programs: the places a patient is handed off to and booked at.

A program is no patient data: every signed-in role reads the directory; admins keep it.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.database import UUIDPrimaryKey, Versioned, utcnow
from backend.extensions import db

SERVICES = ("otp", "obot", "iop", "residential", "withdrawal_management", "recovery_center", "harm_reduction",
            "recovery_housing", "other")


class Program(UUIDPrimaryKey, Versioned, db.Model):
    """A community program in the directory."""

    __tablename__ = "programs"

    name: Mapped[str] = mapped_column(sa.String(200))
    #: otp, obot, iop, residential, withdrawal_management, recovery_center, harm_reduction, …
    service: Mapped[str] = mapped_column(sa.String(30), index=True)
    asam_level: Mapped[str | None] = mapped_column(sa.String(10))
    #: e.g. "3rd" or "4th": the ASAM Criteria edition the level refers to.
    asam_edition: Mapped[str | None] = mapped_column(sa.String(10))
    phone: Mapped[str | None] = mapped_column(sa.String(20))
    address: Mapped[str | None] = mapped_column(sa.String(300))
    accepting_patients: Mapped[bool] = mapped_column(default=True)
    #: Outside the hospital's SUD program: a Part 2 consent is needed to hand off to it.
    external: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
