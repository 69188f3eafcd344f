"""When each scheduled job last ran, so `/ready` can show whether the clock process is alive."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db


class JobHeartbeat(db.Model):
    __tablename__ = "job_heartbeats"

    job_name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    last_run_at: Mapped[dt.datetime]
