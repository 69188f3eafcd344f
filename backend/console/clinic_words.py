"""The clinic pages' words: the API's codes (levels, reasons, kinds, timeline events) as the
sentences people read on the screen. Codes only go in; no free text is made up here."""

from __future__ import annotations

from backend.cases.schemas import CLOSE_REASONS as CLOSE_REASON_CODES
from backend.cases.schemas import ENCOUNTER_KINDS as ENCOUNTER_KIND_CODES
from backend.cases.schemas import OUTCOMES as OUTCOME_CODES

LEVELS = {"emergency_department": "ED", "inpatient": "Inpatient", "transition_clinic": "Transition clinic",
          "community_program": "Community program"}

PRIORITY_REASONS = {
    "back_in_ed": "Back in the ED",
    "handoff_overdue": "Handoff overdue",
    "overdue_task": "Task overdue",
    "not_contacted_since_discharge": "Not contacted since discharge",
    "missed_appointment_not_followed_up": "Missed appointment, no follow-up",
    "phone_invalid": "Phone number not working",
    "unread_reply": "Unread text reply",
    "no_contact_7_days": "Not reached in 7 days",
}

_CLOSE = {"engaged_in_care": "Engaged in care", "lost_to_follow_up": "Lost to follow-up",
          "declined_services": "Declined services", "transferred": "Transferred", "moved_away": "Moved away",
          "incarcerated": "Incarcerated", "deceased": "Deceased", "other": "Other"}
CLOSE_REASONS = [(code, _CLOSE.get(code, code)) for code in CLOSE_REASON_CODES]

_KINDS = {"in_person": "In person", "phone": "Phone call", "video": "Video call", "sms": "Text conversation",
          "attempt": "Attempt (not reached)"}
ENCOUNTER_KINDS = [(code, _KINDS.get(code, code)) for code in ENCOUNTER_KIND_CODES]

_OUTCOMES = {"reached": "Reached", "no_answer": "No answer", "left_message": "Left a message",
             "wrong_number": "Wrong number", "unreachable": "Unreachable"}
OUTCOMES = [(code, _OUTCOMES.get(code, code)) for code in OUTCOME_CODES]

APPOINTMENT_KINDS = {"transition_clinic": "Transition clinic visit", "program_intake": "Program intake",
                     "other": "Appointment"}

_HANDOFF_STEPS = {"sent": "sent", "accepted": "accepted", "declined": "declined", "completed": "completed: arrived",
                  "no_show": "no-show", "cancelled": "cancelled",
                  "overdue_accept": "not answered by its accept-by time",
                  "overdue_arrival": "patient not arrived by its arrive-by time"}


def level_name(code) -> str:
    return LEVELS.get(str(code), str(code).replace("_", " "))


def code_name(code) -> str:
    return str(code).replace("_", " ").capitalize() if code else ""


def timeline_text(item: dict, names: dict) -> str:
    """One timeline item (codes and times only, from `backend.caseload.timeline`) as a sentence."""
    kind, detail = item["kind"], item["detail"]
    someone = lambda key: names.get(detail.get(key), "someone")  # noqa: E731
    if kind == "opened":
        return "Episode opened"
    if kind == "discharged":
        return "Discharged"
    if kind == "coach_assigned":
        return f"Coach assigned: {someone('coach_id')}"
    if kind == "flags_changed":
        return "Flags changed"
    if kind == "closed":
        return f"Episode closed: {_CLOSE.get(detail.get('reason'), 'no reason')}"
    if kind == "level_change":
        return f"Level of care: {level_name(detail.get('level'))}"
    if kind == "encounter":
        outcome = _OUTCOMES.get(detail.get("outcome"), code_name(detail.get("outcome")))
        return f"{_KINDS.get(detail.get('kind'), code_name(detail.get('kind')))}: {outcome.lower()} " \
               f"(by {someone('author_id')})"
    if kind.startswith("task_"):
        return {"task_created": "Task created", "task_done": "Task done",
                "task_cancelled": "Task cancelled"}.get(kind, code_name(kind))
    if kind.startswith("appointment_"):
        what = APPOINTMENT_KINDS.get(detail.get("kind"), "Appointment")
        return f"{what} {kind.removeprefix('appointment_')}"
    if kind.startswith("handoff_"):
        step = _HANDOFF_STEPS.get(kind.removeprefix("handoff_"), code_name(kind.removeprefix("handoff_")))
        return f"Handoff to {level_name(detail.get('to_level')).lower()} {step}"
    if kind == "text_sent":
        return f"Text sent ({code_name(detail.get('kind')).lower()}): {code_name(detail.get('status')).lower()}"
    if kind == "text_received":
        return "Text received" + ("" if detail.get("read") else " (unread)")
    if kind == "back_in_ed":  # the hospital's ADT feed
        where = "admitted" if detail.get("setting") == "inpatient" else "registered in the ED"
        return f"Back at the hospital: {where}" + (" (overdose)" if detail.get("overdose") else "")
    if kind == "hospital_discharged":
        return f"Discharged from the hospital visit: {code_name(detail.get('disposition') or 'unknown').lower()}"
    return code_name(kind)
