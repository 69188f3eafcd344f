"""The outcomes report's facts, stored: one row per episode, handoff and text of the episodes the
report can count, kept up to date from the change feed (`backend.reports.refresh`).

What a row holds is defined in `backend.reports.facts` (its `facts`), and is the same whatever
the report's `now`: instants in ms since 1970, NULL for what has not happened. Rows carry the
episode's discharge, coach and presenting reason, so that a report reads one range of each table
and joins nothing: about 0.8 s for 60,000 episodes on SQLite, where joining the live tables took
about 4 s (README, Performance).
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backend.extensions import db

Ms = sa.BigInteger


class _Cohort:
    """What the report selects its episodes by."""

    discharged_at: Mapped[dt.datetime]
    coach_id: Mapped[uuid.UUID | None] = mapped_column(sa.Uuid)
    presenting_reason: Mapped[str] = mapped_column(sa.String(20))


class EpisodeFacts(_Cohort, db.Model):
    __tablename__ = "report_episode_facts"
    __table_args__ = (sa.Index("ix_report_episode_facts_discharged_at", "discharged_at"),)

    episode_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    discharged: Mapped[int] = mapped_column(Ms)
    first_contact: Mapped[int | None] = mapped_column(Ms)
    first_follow_up: Mapped[int | None] = mapped_column(Ms)
    visit1: Mapped[int | None] = mapped_column(Ms)
    visit2: Mapped[int | None] = mapped_column(Ms)
    retained_visit: Mapped[int | None] = mapped_column(Ms)
    arrival: Mapped[int | None] = mapped_column(Ms)
    first_text: Mapped[int | None] = mapped_column(Ms)
    opted_out: Mapped[int | None] = mapped_column(Ms)
    closed: Mapped[int | None] = mapped_column(Ms)
    #: The patient's language (BCP 47), for the SMS measures by language.
    language: Mapped[str | None] = mapped_column(sa.String(35))
    #: Continuity of treatment. The episode began in the ED (a level period there).
    from_ed: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: Where the patient went at discharge (`unknown` when the discharge did not say).
    disposition: Mapped[str | None] = mapped_column(sa.String(30))
    #: The first naloxone kit given to the patient with training.
    naloxone_trained: Mapped[int | None] = mapped_column(Ms)
    #: The first ED bridge prescription's coverage: from (local midnight of its start) and until
    #: (midnight after its last covered date, in the patient's time zone).
    bridge_starts: Mapped[int | None] = mapped_column(Ms)
    bridge_ends: Mapped[int | None] = mapped_column(Ms)
    #: The first continuation of it: a visit that can renew it, or a next supply.
    moud_continued: Mapped[int | None] = mapped_column(Ms)
    #: The hospital's ADT feed: the first ED registration or admission after the discharge, and
    #: the first one for an overdose (`backend.interop`).
    revisit: Mapped[int | None] = mapped_column(Ms)
    overdose_revisit: Mapped[int | None] = mapped_column(Ms)


class HandoffFacts(_Cohort, db.Model):
    __tablename__ = "report_handoff_facts"
    __table_args__ = (sa.Index("ix_report_handoff_facts_discharged_at", "discharged_at"),
                      sa.Index("ix_report_handoff_facts_episode_id", "episode_id"))

    handoff_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    episode_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    method: Mapped[str] = mapped_column(sa.String(20))
    to_level: Mapped[str] = mapped_column(sa.String(30))
    status: Mapped[str] = mapped_column(sa.String(20))
    accept_by: Mapped[int] = mapped_column(Ms)
    arrive_by: Mapped[int] = mapped_column(Ms)
    accepted: Mapped[int | None] = mapped_column(Ms)
    cancelled: Mapped[int | None] = mapped_column(Ms)
    arrived: Mapped[int | None] = mapped_column(Ms)


class TextFacts(_Cohort, db.Model):
    __tablename__ = "report_text_facts"
    __table_args__ = (sa.Index("ix_report_text_facts_discharged_at", "discharged_at"),
                      sa.Index("ix_report_text_facts_episode_id", "episode_id"))

    message_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid, primary_key=True)
    episode_id: Mapped[uuid.UUID] = mapped_column(sa.Uuid)
    status: Mapped[str] = mapped_column(sa.String(20))
    #: When Bridgeline tried to send it (sent, or refused by Twilio).
    tried: Mapped[int] = mapped_column(Ms)
    #: The language it was written in (BCP 47).
    language: Mapped[str | None] = mapped_column(sa.String(35))
    #: An automatic text that went in English because none existed in the patient's language.
    fell_back: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class RefreshState(db.Model):
    """Where in the change feed the facts are up to date (one row, id 1, made by the migration)."""

    __tablename__ = "report_refresh_state"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    #: The feed position (`backend.sync.service.Position`) every change up to which is counted.
    txid: Mapped[int] = mapped_column(sa.BigInteger)
    seq: Mapped[int] = mapped_column(sa.BigInteger)
    refreshed_at: Mapped[dt.datetime | None]
    #: The facts' definitions when they were computed: a new definition rebuilds them all.
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
