"""HTTP endpoints of an episode's encounters, tasks and appointments (its timeline is a read
model: `backend.caseload.api`)."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend import etag
from backend.auth.access import allow, current_user
from backend.auth.models import CASE_WORKERS, CLINICAL_ROLES
from backend.cases import activities
from backend.cases.schemas import (
    AppointmentCreateSchema,
    AppointmentPageSchema,
    AppointmentSchema,
    AppointmentUpdateSchema,
    EncounterCreateSchema,
    EncounterPageSchema,
    EncounterSchema,
    TaskCreateSchema,
    TaskPageSchema,
    TaskQuerySchema,
    TaskSchema,
    TaskUpdateSchema,
)
from backend.cases.scopes import APPOINTMENTS, EPISODES, TASKS
from backend.openapi import IF_MATCH, Blueprint, problem
from backend.schemas import PageQuerySchema

blp = Blueprint("activities", __name__, url_prefix="/api/v1",
                description="Encounters, tasks, appointments and the episode timeline.")

_CREATED = "201 when created; 200 when a retry with the same client id found it already created."


def _created(record, created: bool):
    return record, 201 if created else 200, etag.headers(record) if hasattr(record, "version") else {}


@blp.route("/episodes/<uuid:episode_id>/encounters")
class Encounters(MethodView):
    @blp.doc(operationId="createEncounter")
    @allow(*CASE_WORKERS)
    @blp.arguments(EncounterCreateSchema)
    @blp.response(201, EncounterSchema, description=_CREATED)
    @blp.alt_response(200, schema=EncounterSchema, success=True, description="Already logged (a retry).")
    @problem(blp, 409, "The episode is closed, or the id belongs to another record.")
    def post(self, body, episode_id: uuid.UUID):
        """Log a contact or an attempt (client `id` makes retries safe)"""
        encounter, created = activities.log_encounter(episode=EPISODES.load_or_404(episode_id, lock=True), fields=body,
                                                      actor=current_user())
        return _created(encounter, created)

    @blp.doc(operationId="listEncounters")
    @allow(*CASE_WORKERS)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, EncounterPageSchema)
    def get(self, query, episode_id: uuid.UUID):
        """The episode's encounters, newest first"""
        items, next_cursor = activities.list_encounters(episode=EPISODES.load_or_404(episode_id), **query)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/episodes/<uuid:episode_id>/tasks")
class EpisodeTasks(MethodView):
    @blp.doc(operationId="createTask")
    @allow(*CASE_WORKERS)
    @blp.arguments(TaskCreateSchema)
    @blp.response(201, TaskSchema, description=_CREATED)
    @blp.alt_response(200, schema=TaskSchema, success=True, description="Already created (a retry).")
    def post(self, body, episode_id: uuid.UUID):
        """Create a follow-up task (client `id` makes retries safe)"""
        task, created = activities.create_task(episode=EPISODES.load_or_404(episode_id, lock=True), fields=body,
                                               actor=current_user())
        return _created(task, created)

    @blp.doc(operationId="listEpisodeTasks")
    @allow(*CASE_WORKERS)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, TaskPageSchema)
    def get(self, query, episode_id: uuid.UUID):
        """The episode's tasks, soonest due first"""
        items, next_cursor = activities.list_episode_tasks(episode=EPISODES.load_or_404(episode_id), **query)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/tasks")
class Tasks(MethodView):
    @blp.doc(operationId="listTasks")
    @allow(*CASE_WORKERS)
    @blp.arguments(TaskQuerySchema, location="query")
    @blp.response(200, TaskPageSchema)
    def get(self, query):
        """Tasks on your episodes (`assignee=me`, `status=open`), soonest due first"""
        items, next_cursor = activities.list_tasks(user=current_user(), assignee=query.get("assignee"),
                                                   status=query.get("status"), cursor=query["cursor"],
                                                   limit=query["limit"])
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/tasks/<uuid:task_id>")
class TaskDetail(MethodView):
    @blp.doc(operationId="getTask")
    @allow(*CASE_WORKERS)
    @blp.response(200, TaskSchema)
    def get(self, task_id: uuid.UUID):
        """One task"""
        task = activities.read(TASKS.load_or_404(task_id), action="task.read")
        return task, etag.headers(task)

    @blp.doc(operationId="updateTask")
    @allow(*CASE_WORKERS)
    @blp.arguments(TaskUpdateSchema)
    @blp.response(200, TaskSchema)
    @blp.doc(parameters=[IF_MATCH])
    def patch(self, body, task_id: uuid.UUID):
        """Change a task or mark it done or cancelled (If-Match required)"""
        task = TASKS.load_or_404(task_id)
        return etag.guarded_update(task, current=lambda: TaskSchema().dump(activities.read(task, action="task.read")),
                                   change=lambda: activities.update_task(task=task, changes=body))


@blp.route("/episodes/<uuid:episode_id>/appointments")
class EpisodeAppointments(MethodView):
    @blp.doc(operationId="createAppointment")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(AppointmentCreateSchema)
    @blp.response(201, AppointmentSchema, description=_CREATED)
    @blp.alt_response(200, schema=AppointmentSchema, success=True, description="Already booked (a retry).")
    def post(self, body, episode_id: uuid.UUID):
        """Book an appointment (client `id` makes retries safe)"""
        episode = EPISODES.load_or_404(episode_id, lock=True)
        appointment, created = activities.book_appointment(episode=episode, fields=body, actor=current_user())
        return _created(appointment, created)

    @blp.doc(operationId="listEpisodeAppointments")
    @allow(*CASE_WORKERS)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, AppointmentPageSchema)
    def get(self, query, episode_id: uuid.UUID):
        """The episode's appointments, in time order"""
        items, next_cursor = activities.list_appointments(episode=EPISODES.load_or_404(episode_id), **query)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/appointments/<uuid:appointment_id>")
class AppointmentDetail(MethodView):
    @blp.doc(operationId="getAppointment")
    @allow(*CASE_WORKERS)
    @blp.response(200, AppointmentSchema)
    def get(self, appointment_id: uuid.UUID):
        """One appointment"""
        appointment = activities.read(APPOINTMENTS.load_or_404(appointment_id), action="appointment.read")
        return appointment, etag.headers(appointment)

    @blp.doc(operationId="updateAppointment")
    @allow(*CASE_WORKERS)
    @blp.arguments(AppointmentUpdateSchema)
    @blp.response(200, AppointmentSchema)
    @blp.doc(parameters=[IF_MATCH])
    def patch(self, body, appointment_id: uuid.UUID):
        """Move an appointment or record its outcome (If-Match required)"""
        appointment = APPOINTMENTS.load_or_404(appointment_id)
        read = lambda: activities.read(appointment, action="appointment.read")  # noqa: E731
        return etag.guarded_update(appointment, current=lambda: AppointmentSchema().dump(read()),
                                   change=lambda: activities.update_appointment(appointment=appointment, changes=body))
