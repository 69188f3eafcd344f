"""The clinic's pages of the console: the review dashboard, the handoff queue, a coach's caseload,
and the clinic's parts of the episode page (timeline, tasks, appointments, coach assignment,
closing, logging a contact) — console.md "Who does what", clinic staff and coach.

Like every console view, each one reads through the API's own read models and scopes
(`caseload.service.review`, `handoffs.service.list_handoffs`, `timeline.for_episode`…) and
changes state through the same service function as the API's endpoint, so the audit trail and
the rules are the API's. The handoff queue offers for each handoff only the steps the handoff
state machine allows from its status (`handoffs.service.TRANSITIONS`).
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import abort, flash, redirect, request, url_for

from backend.auth import service as auth_service
from backend.auth.access import allow, current_user
from backend.auth.models import CASE_WORKERS, REGISTRARS, Role, User
from backend.auth.scopes import USERS
from backend.caseload import service as caseload
from backend.caseload import timeline
from backend.caseload.scopes import caseload_owner
from backend.cases import activities
from backend.cases import service as cases
from backend.cases.models import Episode, Patient
from backend.cases.schemas import (
    AppointmentCreateSchema,
    CloseSchema,
    CoachAssignmentSchema,
    EncounterCreateSchema,
    TaskCreateSchema,
)
from backend.cases.scopes import EPISODES
from backend.console import bp, forms
from backend.console.clinic_words import (
    APPOINTMENT_KINDS,
    CLOSE_REASONS,
    ENCOUNTER_KINDS,
    OUTCOMES,
    PRIORITY_REASONS,
    level_name,
    timeline_text,
)
from backend.console.views import (
    METHOD_LABELS,
    MOUD_LABELS,
    _episode_page,
    page,
    refused,
)
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.handoffs import service as handoffs
from backend.handoffs.models import HandoffStatus
from backend.handoffs.schemas import CompleteSchema, ReasonedStepSchema, StepSchema
from backend.handoffs.scopes import HANDOFFS
from backend.outreach.models import NEEDS_REVIEW, Message, MessageDirection
from backend.programs.models import Program

#: The receiving side's steps, as the queue's buttons name them, with the form each one reads.
STEPS = {"accept": ("Accept", StepSchema), "decline": ("Decline", ReasonedStepSchema),
         "complete": ("Complete", CompleteSchema), "no-show": ("No-show", StepSchema)}
#: A page of one of the review's lists.
LIST_PAGE = 100
#: How many open handoffs a page of the queue lists, most urgent first (its counts are of them
#: all): a nurse works from the top, and a page of forms stays quick to load and to scan.
QUEUE_PAGE = 50
#: How many of the most urgent open handoffs the dashboard lists (the queue has them all).
DASHBOARD_HANDOFFS = 8
#: How many of each of its lists the dashboard shows, longest waiting first ("All …" has the rest).
DASHBOARD_LIST = 25
#: The review's lists with a page of their own: the path's word → (the list, its heading).
REVIEW_LISTS = {"unassigned": ("unassigned", "Unassigned episodes"),
                "not-contacted": ("not_contacted_24h_after_discharge", "Not contacted within 24 h of discharge"),
                "no-visit": ("no_clinic_visit_72h", "No clinic visit by 72 h after discharge"),
                "supply-ending": ("moud_supply_ending", "Medication running out, no visit booked"),
                "back-in-ed": ("back_in_ed", "Back in the ED, not reached since")}


# --- the review dashboard -----------------------------------------------------------------

@bp.route("/review")
@allow(Role.CLINIC_STAFF)
def review():
    return _review_page()


def _review_page(status: int = 200, **context):
    summary = caseload.review(list_limit=DASHBOARD_LIST)  # audited as the API's GET /caseloads
    coach_names = {row["coach_id"]: row["coach_display_name"] for row in summary["coaches"]}
    urgent, counts = handoffs.most_urgent(user=current_user(), limit=DASHBOARD_HANDOFFS)
    return page("review.html", status, review=summary, coach_names=coach_names, level_name=level_name,
                chart=_load_chart(summary["coaches"]), handoffs=_queue_rows(urgent), handoff_counts=counts,
                texts_needing_review=_texts_needing_review(), **context)


@bp.route("/review/<any(unassigned, 'not-contacted', 'no-visit', 'supply-ending', 'back-in-ed'):which>")
@allow(Role.CLINIC_STAFF)
def review_list(which: str):
    """One of the dashboard's lists in full, a page at a time (its cursor is no patient data)."""
    name, heading = REVIEW_LISTS[which]
    items, next_cursor = caseload.review_list(name, cursor=request.args.get("cursor") or None, limit=LIST_PAGE)
    return page("review_list.html", heading=heading, which=which, items=items, next_cursor=next_cursor,
                coach_names=_names({item["coach_id"] for item in items}), level_name=level_name)


def _load_chart(rows: list[dict]) -> dict:
    """Each coach's bar: the open episodes, and the part not reached in 7 days, to one scale."""
    widest = max([row["active"] for row in rows] + [1])
    bar_room = 240
    bars = [{"name": row["coach_display_name"], "y": 8 + i * 30, "active": row["active"],
             "stale": row["not_contacted_7d"], "width": round(bar_room * row["active"] / widest),
             "stale_width": round(bar_room * row["not_contacted_7d"] / widest)} for i, row in enumerate(rows)]
    return {"bars": bars, "height": 16 + 30 * len(bars), "x": 170, "room": bar_room, "width": 560}


def _texts_needing_review() -> int:
    """How many outbound texts wait for a person (a count: no patient data, nothing to audit)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(Message).where(
        sa.text(NEEDS_REVIEW), Message.direction == MessageDirection.OUTBOUND)) or 0


@bp.route("/users/<uuid:user_id>/access-approval", methods=["POST"])
@allow(Role.CLINIC_STAFF)
def approve_access(user_id: uuid.UUID):
    """The second person's approval of a clinical role (POST /api/v1/users/{id}/access-approval)."""
    grantee = USERS.load_or_404(user_id, lock=True)
    try:
        auth_service.approve_access(user=grantee, approver=current_user(), role=request.form.get("role") or None)
    except Problem as problem:
        refused(problem)
        return _review_page(problem.code, access_errors={str(user_id): problem.description})
    flash("Access approved.")
    return redirect(url_for("console.review") + "#access")


# --- the handoff queue --------------------------------------------------------------------

@bp.route("/handoffs")
@allow(Role.CLINIC_STAFF)
def handoff_queue():
    return _queue_page()


def _queue_page(status: int = 200, **context):
    """A page of the queue: `page` (a number, from the query string or a step's form) picks it."""
    number = max(request.values.get("page", 1, type=int) or 1, 1)
    urgent, counts = handoffs.most_urgent(user=current_user(), limit=QUEUE_PAGE, offset=(number - 1) * QUEUE_PAGE)
    pages = max(-(-(counts["waiting"] + counts["accepted"]) // QUEUE_PAGE), 1)
    if number > pages:  # the last page emptied since it was shown: show what is now the last
        number = pages
        urgent, counts = handoffs.most_urgent(user=current_user(), limit=QUEUE_PAGE,
                                              offset=(number - 1) * QUEUE_PAGE)
    return page("handoffs.html", status, handoffs=_queue_rows(urgent), counts=counts, level_name=level_name,
                methods=METHOD_LABELS, moud=MOUD_LABELS, number=number, pages=pages,
                first=(number - 1) * QUEUE_PAGE + 1, **context)


def _queue_rows(found: list) -> list[dict]:
    """The handoffs as the queue shows them (in the order given), with their patients' and
    programs' names in one query each."""
    episodes = {row.id: row for row in db.session.execute(
        sa.select(Episode.id, Episode.patient_id, Episode.level, Patient.display_name)
        .join(Patient, Patient.id == Episode.patient_id)
        .where(Episode.id.in_({h.episode_id for h in found})))} if found else {}
    program_ids = {h.to_program_id for h in found if h.to_program_id}
    programs = dict(db.session.execute(sa.select(Program.id, Program.name).where(Program.id.in_(program_ids)))
                    .all()) if program_ids else {}
    now = utcnow()
    rows = []
    for handoff in found:
        waiting = handoff.status == HandoffStatus.SENT
        rows.append({
            "handoff": handoff, "episode": episodes[handoff.episode_id], "overdue": handoff.overdue(now),
            "to": programs.get(handoff.to_program_id) or level_name(handoff.to_level),
            "deadline_label": "Accept by" if waiting else "Arrive by",
            "deadline": handoff.accept_by if waiting else handoff.arrive_by,
            "steps": [(slug, label) for slug, (label, _) in STEPS.items()
                      if handoff.status in handoffs.TRANSITIONS[slug.replace("-", "_")][0]],
        })
    return rows


@bp.route("/handoffs/<uuid:handoff_id>/<any(accept, decline, complete, 'no-show'):step>", methods=["POST"])
@allow(Role.CLINIC_STAFF)
def handoff_step(handoff_id: uuid.UUID, step: str):
    """One step of the handoff, by the same service as POST /api/v1/handoffs/{id}/{step}."""
    record = HANDOFFS.load_or_404(handoff_id)
    label, schema = STEPS[step]
    form = {"reason": request.form.get("reason", ""), "arrived_at": request.form.get("arrived_at", "")}
    data = {}
    if step == "decline":
        data["reason"] = form["reason"]
    if step == "complete" and form["arrived_at"].strip():
        data["arrived_at"] = forms.timestamp(form["arrived_at"])
    try:
        forms.submit(schema(), data, lambda fields: handoffs.take_step(
            handoff=record, action=step.replace("-", "_"), actor=current_user(),
            note=fields.get("note") or fields.get("reason"), arrived_at=fields.get("arrived_at")))
    except forms.FormErrors as invalid:
        return _queue_page(invalid.status, step_errors={str(handoff_id): invalid.errors},
                           step_form={str(handoff_id): form})
    flash(f"Handoff: {label} recorded.")
    if request.form.get("back") == "review":
        return redirect(url_for("console.review"))
    number = request.form.get("page", 1, type=int) or 1
    return redirect(url_for("console.handoff_queue", page=number) if number > 1 else url_for("console.handoff_queue"))


# --- a coach's caseload -------------------------------------------------------------------

@bp.route("/caseload")
@allow(Role.COACH)
def my_caseload():
    return _caseload_page(current_user().id)


@bp.route("/coaches/<uuid:coach_id>/caseload")
@allow(Role.CLINIC_STAFF)
def coach_caseload(coach_id: uuid.UUID):
    return _caseload_page(coach_id)


def _caseload_page(asked: uuid.UUID):
    coach_id = caseload_owner(current_user(), asked)
    coach = db.session.get(User, coach_id)
    if coach is None or coach.role != Role.COACH:
        abort(404)
    entries = caseload.caseload(coach_id=coach_id)  # audited as the API's GET /caseload
    return page("caseload.html", coach=coach, own=coach_id == current_user().id, entries=entries,
                level_name=level_name, reasons=PRIORITY_REASONS)


# --- the clinic's parts of the episode page -----------------------------------------------

def episode_parts(record: Episode) -> dict:
    """What the episode page shows beyond the ED nurse's part, by role as the API's reads allow:
    the timeline (every clinical role; the service leaves the coach's work out for ED nurses),
    tasks and appointments (coach, clinic staff), the coaches to assign (ED nurse, clinic staff)."""
    user = current_user()
    parts: dict = {"timeline": timeline.for_episode(episode=record, user=user), "tasks": [], "appointments": [],
                   "coaches": [], "close_reasons": CLOSE_REASONS,
                   "close_reason_names": dict(CLOSE_REASONS), "encounter_kinds": ENCOUNTER_KINDS,
                   "outcomes": OUTCOMES, "level_name": level_name,
                   "timeline_text": timeline_text, "appointment_kinds": APPOINTMENT_KINDS, "now": utcnow()}
    if user.role in CASE_WORKERS:
        parts["tasks"], _ = activities.list_episode_tasks(episode=record, cursor=None, limit=200)
        parts["appointments"], _ = activities.list_appointments(episode=record, cursor=None, limit=200)
    parts["may_assign"] = user.role in REGISTRARS and record.is_open
    if parts["may_assign"]:
        coaches, _ = auth_service.list_users(role=Role.COACH, active=True, cursor=None, limit=200)
        parts["coaches"] = [(str(coach.id), coach.display_name) for coach in
                            sorted(coaches, key=lambda coach: (coach.display_name, coach.username))]
    parts["names"] = _names({record.coach_id, *_people_of(parts)})
    parts["coach_form"] = {"coach_id": str(record.coach_id or "")}
    parts["contact_form"] = {"kind": "phone", "outcome": "", "occurred_at": forms.now_input(), "contact_note": ""}
    parts["close_form"] = {"reason": "", "close_note": ""}
    parts["task_form"] = dict.fromkeys(TASK_NAMES.values(), "")
    parts["appointment_form"] = {**dict.fromkeys(APPOINTMENT_NAMES.values(), ""),
                                 "appointment_kind": "transition_clinic"}
    return parts


def _people_of(parts: dict) -> set:
    ids = {task.assignee_id for task in parts["tasks"]}
    for item in parts["timeline"]:
        detail = item["detail"]
        ids |= {detail.get(key) for key in ("coach_id", "author_id", "assignee_id", "by")}
    return {uuid.UUID(str(i)) for i in ids if i}


def _names(ids: set) -> dict:
    """Display names of the staff a page mentions, in one query (keys as strings and UUIDs)."""
    ids = {i for i in ids if i}
    if not ids:
        return {}
    rows = db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(ids))).all()
    return {**{row.id: row.display_name for row in rows}, **{str(row.id): row.display_name for row in rows}}


@bp.route("/episodes/<uuid:episode_id>/coach", methods=["POST"])
@allow(*REGISTRARS)
def assign_coach(episode_id: uuid.UUID):
    """PUT /api/v1/episodes/{id}/coach as a form: the same service and audit."""
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {"coach_id": request.form.get("coach_id", "")}
    try:
        forms.submit(CoachAssignmentSchema(), form,
                     lambda fields: cases.assign_coach(episode=record, actor=current_user(), **fields))
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, coach_form=form, coach_errors=invalid.errors)
    flash("Coach assigned.")
    return redirect(url_for("console.episode", episode_id=record.id))


@bp.route("/episodes/<uuid:episode_id>/close", methods=["POST"])
@allow(*CASE_WORKERS)
def close_episode(episode_id: uuid.UUID):
    """POST /api/v1/episodes/{id}/close as a form."""
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {"reason": request.form.get("reason", ""), "close_note": request.form.get("close_note", "")}
    data = {"reason": form["reason"], **({"note": form["close_note"].strip()} if form["close_note"].strip() else {})}
    try:
        forms.submit(CloseSchema(), data, lambda fields: cases.close_episode(
            episode=record, reason=fields["reason"], note=fields.get("note"), actor=current_user()),
            {"note": "close_note"})
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, close_form=form, close_errors=invalid.errors)
    flash("Episode closed.")
    return redirect(url_for("console.episode", episode_id=record.id))


#: The contact form's fields, by the form's names (the schema's, but `note` is the contact's).
CONTACT_NAMES = {"kind": "kind", "outcome": "outcome", "occurred_at": "occurred_at", "note": "contact_note"}


@bp.route("/episodes/<uuid:episode_id>/encounters", methods=["POST"])
@allow(*CASE_WORKERS)
def log_contact(episode_id: uuid.UUID):
    """POST /api/v1/episodes/{id}/encounters as a form: a contact or an attempt."""
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {field: request.form.get(field, "") for field in CONTACT_NAMES.values()}
    data = {"kind": form["kind"], "occurred_at": forms.timestamp(form["occurred_at"]) or "",
            **({"outcome": form["outcome"]} if form["outcome"] else {}),
            **({"note": form["contact_note"].strip()} if form["contact_note"].strip() else {})}
    try:
        forms.submit(EncounterCreateSchema(), data,
                     lambda fields: activities.log_encounter(episode=record, fields=fields, actor=current_user()),
                     CONTACT_NAMES)
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, contact_form=form, contact_errors=invalid.errors)
    flash("Contact logged.")
    return redirect(url_for("console.episode", episode_id=record.id))


#: The task form's fields, by the form's names (ids unique on the episode page).
TASK_NAMES = {"title": "task_title", "due_at": "task_due_at"}
#: The appointment form's fields, likewise.
APPOINTMENT_NAMES = {"kind": "appointment_kind", "starts_at": "appointment_starts_at",
                     "program_id": "appointment_program_id", "location": "appointment_location"}


@bp.route("/episodes/<uuid:episode_id>/tasks", methods=["POST"])
@allow(*CASE_WORKERS)
def add_task(episode_id: uuid.UUID):
    """POST /api/v1/episodes/{id}/tasks as a form: for the episode's coach (or whoever adds it)."""
    return _create_on_episode(episode_id, "task", TaskCreateSchema(), activities.create_task, TASK_NAMES,
                              times=("due_at",), done="Task added.")


@bp.route("/episodes/<uuid:episode_id>/appointments", methods=["POST"])
@allow(*CASE_WORKERS)
def book_appointment(episode_id: uuid.UUID):
    """POST /api/v1/episodes/{id}/appointments as a form."""
    return _create_on_episode(episode_id, "appointment", AppointmentCreateSchema(), activities.book_appointment,
                              APPOINTMENT_NAMES, times=("starts_at",), done="Appointment booked.")


def _create_on_episode(episode_id: uuid.UUID, part: str, schema, service, names: dict[str, str], *,
                       times: tuple[str, ...], done: str):
    """A record of the episode created by the API's schema and service from the form of the
    episode page's `part`: back to the page with the input and its errors, or to the part."""
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {name: request.form.get(name, "") for name in names.values()}
    data = {}
    for field, name in names.items():  # blank fields left out; local times in the hospital's zone
        if value := form[name].strip():
            data[field] = (forms.timestamp(value) or "") if field in times else value
    try:
        forms.submit(schema, data, lambda fields: service(episode=record, fields=fields, actor=current_user()), names)
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, **{f"{part}_form": form, f"{part}_errors": invalid.errors})
    flash(done)
    return redirect(url_for("console.episode", episode_id=record.id) + f"#{part}s-heading")
