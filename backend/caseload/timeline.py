"""An episode's timeline: every event in one chronological list, each with its kind.

Kinds: `opened`, `discharged`, `coach_assigned`, `flags_changed`, `closed` (lifecycle),
`level_change`, `encounter`, `task_created`, `task_done`, `task_cancelled`,
`appointment_booked`, `appointment_attended`, `appointment_missed`, `appointment_cancelled`.
`handoff_sent`, `handoff_accepted`, … and `handoff_overdue_accept` / `handoff_overdue_arrival`
(the handoff log); `naloxone_given` and `naloxone_used` (the naloxone log, never a use's note);
`medication_started` (a supply, at the start of its coverage) and `medication_filled` /
`medication_not_filled` (the pharmacy's answer); `back_in_ed` and `hospital_discharged` (a
return to the hospital the ADT feed reported on the episode, and that visit's discharge);
`text_sent` and `text_received` (outreach: codes and times, never the text).
Each item carries codes and times only, never free text. One query per kind of record, however
long the episode.
"""

from __future__ import annotations

import sqlalchemy as sa

from backend.audit import service as audit
from backend.auth.models import CASE_WORKERS, User
from backend.cases.models import (
    Appointment,
    AppointmentStatus,
    Encounter,
    Episode,
    EpisodeEvent,
    Task,
    TaskStatus,
)
from backend.continuity import medications, naloxone
from backend.continuity.models import FillStatus
from backend.extensions import db
from backend.handoffs import service as handoffs
from backend.handoffs.models import HandoffEventKind
from backend.interop.models import HospitalVisit
from backend.outreach import service as outreach
from backend.outreach.models import MessageDirection, MessageStatus
from backend.schemas import json_ready

#: The coach's work, shown only to those who work the case (an ED nurse sees the episode's path,
#: and cannot list these records either).
_CASE_WORK_KINDS = ("encounter", "task_", "text_")


def for_episode(*, episode: Episode, user: User) -> list[dict]:
    items = [_item(event.kind, event.at, event.id, event.data) for event in
             db.session.scalars(sa.select(EpisodeEvent).where(EpisodeEvent.episode_id == episode.id))]
    items += [_item("level_change", period.started_at, None, {"level": str(period.level), "ended_at": period.ended_at})
              for period in episode.level_periods]
    for encounter in db.session.scalars(sa.select(Encounter).where(Encounter.episode_id == episode.id)):
        items.append(_item("encounter", encounter.occurred_at, encounter.id, {
            "kind": encounter.kind, "outcome": encounter.outcome, "author_id": encounter.author_id,
            "duration_minutes": encounter.duration_minutes}))
    for task in db.session.scalars(sa.select(Task).where(Task.episode_id == episode.id)):
        # No title: it is free text, and the timeline carries codes and times only.
        detail = {"due_at": task.due_at, "status": str(task.status), "assignee_id": task.assignee_id}
        items.append(_item("task_created", task.created_at, task.id, detail))
        if task.status != TaskStatus.OPEN:
            items.append(_item(f"task_{task.status}", task.completed_at or task.updated_at, task.id, detail))
    for appointment in db.session.scalars(sa.select(Appointment).where(Appointment.episode_id == episode.id)):
        detail = {"kind": appointment.kind, "starts_at": appointment.starts_at, "status": str(appointment.status)}
        items.append(_item("appointment_booked", appointment.created_at, appointment.id, detail))
        if appointment.status != AppointmentStatus.SCHEDULED:
            items.append(_item(f"appointment_{appointment.status}", appointment.status_changed_at
                               or appointment.updated_at, appointment.id, detail))
    for entry in naloxone.of_episode(episode_id=episode.id):
        detail = ({"recipient": entry.recipient, "product": entry.product, "doses": entry.doses,
                   "training_given": entry.training_given, "setting": entry.setting} if entry.kind == "given"
                  else {"reported_by": entry.reported_by, "replacement_task_id": entry.task_id})  # no note
        items.append(_item(f"naloxone_{entry.kind}", entry.occurred_at, entry.id, detail))
    for supply in medications.of_episode(episode_id=episode.id):
        detail = {"medication": supply.medication, "kind": supply.kind, "source": supply.source,
                  "days_supplied": supply.days_supplied, "covered_until": supply.covered_until.isoformat(),
                  "fill_status": supply.fill_status}
        items.append(_item("medication_started", supply.starts_at, supply.id, detail))
        if supply.fill_status != FillStatus.UNKNOWN:
            items.append(_item(f"medication_{supply.fill_status}", supply.fill_status_at, supply.id, detail))
    for visit in db.session.scalars(sa.select(HospitalVisit).where(HospitalVisit.episode_id == episode.id,
                                                                  HospitalVisit.back_in_ed == sa.true())):
        detail = {"setting": visit.setting, "overdose": visit.overdose, "task_id": visit.task_id}
        items.append(_item("back_in_ed", visit.registered_at, visit.id, detail))
        if visit.discharged_at is not None:
            items.append(_item("hospital_discharged", visit.discharged_at, visit.id,
                               {**detail, "disposition": visit.disposition}))
    for event, to_level in handoffs.events_of_episode(episode_id=episode.id):
        kind = f"handoff_{event.status if event.kind == HandoffEventKind.TRANSITION else event.kind}"
        items.append(_item(kind, event.at, event.handoff_id, {"to_level": to_level, "by": event.by_id}))
    for message in outreach.texts_of_episode(episode_id=episode.id):
        if message.direction == MessageDirection.INBOUND:
            items.append(_item("text_received", message.created_at, message.id, {"read": message.read_at is not None}))
        elif message.status not in (MessageStatus.QUEUED, MessageStatus.CANCELLED):
            items.append(_item("text_sent", message.sent_at or message.status_at, message.id,
                               {"kind": str(message.kind), "status": str(message.status)}))
    if user.role not in CASE_WORKERS:
        items = [item for item in items if not item["kind"].startswith(_CASE_WORK_KINDS)]
    items.sort(key=lambda item: (item["at"], item["kind"], str(item["record_id"])))
    audit.record("episode.timeline", resource_type="episode", resource_id=episode.id,
                 patient_ids=[episode.patient_id], details={"count": len(items)})
    return items


def _item(kind: str, at, record_id, detail: dict) -> dict:
    return {"kind": kind, "at": at, "record_id": record_id, "detail": json_ready(detail)}
