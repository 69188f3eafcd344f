"""Message templates (the outbox, messages and webhooks join with the rest of outreach)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.database import UUIDPrimaryKey, utcnow
from backend.extensions import db


class MessageTemplate(UUIDPrimaryKey, db.Model):
    """A text with named placeholders (`{first_name}`…), checked by the privacy rules on save."""

    __tablename__ = "message_templates"

    name: Mapped[str] = mapped_column(sa.String(100), unique=True)
    body: Mapped[str] = mapped_column(sa.String(600))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
