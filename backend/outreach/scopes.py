"""Who sees what of outreach.

- a patient's thread and composing follow the patient's scope (`backend.cases.scopes.PATIENTS`);
- the inbox: a coach sees the replies of the patients of their open episodes; clinic staff see
  every reply, including those from numbers that match no single patient;
- message templates hold no patient data: every signed-in role reads them.
"""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.access import Scope
from backend.auth.models import Role, User
from backend.cases.models import Episode
from backend.outreach.models import INBOUND, Message, MessageTemplate


def _inbox_visible_to(user: User) -> sa.ColumnElement[bool]:
    inbound = sa.text(INBOUND)  # as the inbox's partial index says it
    if user.role == Role.CLINIC_STAFF:
        return inbound
    if user.role == Role.COACH:
        return sa.and_(inbound, Message.patient_id.in_(
            sa.select(Episode.patient_id).where(Episode.coach_id == user.id, Episode.is_open)))
    return sa.false()


INBOX = Scope(Message, "message", _inbox_visible_to, lambda message: [message.patient_id] if message.patient_id else [])
TEMPLATES = Scope(MessageTemplate, "message_template", lambda user: sa.true())
