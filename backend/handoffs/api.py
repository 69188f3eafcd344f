"""HTTP endpoints of handoffs and of the programs directory (api.md "Handoffs and consent").

The directory's endpoints are served here, on the `handoffs` blueprint, because the published
contract groups them under its `handoffs` tag; their rules live in `backend.programs`.
"""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend import etag
from backend.auth.access import allow, current_user, open_while_pending, signed_in
from backend.auth.models import CASE_WORKERS, CLINICAL_ROLES, Role
from backend.cases.scopes import EPISODES
from backend.handoffs import service
from backend.handoffs.schemas import (
    CompleteSchema,
    HandoffCreateSchema,
    HandoffPageSchema,
    HandoffQuerySchema,
    HandoffSchema,
    ReasonedStepSchema,
    StepSchema,
)
from backend.handoffs.scopes import HANDOFFS
from backend.openapi import IF_MATCH, Blueprint, problem
from backend.programs import service as programs
from backend.programs.schemas import (
    ProgramCreateSchema,
    ProgramFieldsSchema,
    ProgramPageSchema,
    ProgramQuerySchema,
    ProgramSchema,
)
from backend.programs.scopes import PROGRAMS

blp = Blueprint("handoffs", __name__, url_prefix="/api/v1", description="Programs and handoffs.")

#: Anyone clinical sends (and may cancel) a handoff; the receiving side answers for it.
SENDERS, RECEIVERS = CLINICAL_ROLES, CASE_WORKERS


@blp.route("/programs")
class Programs(MethodView):
    @blp.doc(operationId="listPrograms")
    @open_while_pending
    @signed_in
    @blp.arguments(ProgramQuerySchema, location="query")
    @blp.response(200, ProgramPageSchema)
    def get(self, query):
        """The community programs directory (filter by service, accepting new patients)"""
        items, next_cursor = programs.list_programs(service=query.get("service"),
                                                    accepting=query.get("accepting_patients"),
                                                    cursor=query["cursor"], limit=query["limit"])
        return {"items": items, "next_cursor": next_cursor}

    @blp.doc(operationId="createProgram")
    @allow(Role.ADMIN)
    @blp.arguments(ProgramCreateSchema)
    @blp.response(201, ProgramSchema)
    def post(self, body):
        """Add a program (admin)"""
        program = programs.create_program(fields=body)
        return program, etag.headers(program)


@blp.route("/programs/<uuid:program_id>")
class ProgramDetail(MethodView):
    @blp.doc(operationId="getProgram")
    @open_while_pending
    @signed_in
    @blp.response(200, ProgramSchema)
    def get(self, program_id: uuid.UUID):
        """One program"""
        program = PROGRAMS.load_or_404(program_id)
        return program, etag.headers(program)

    @blp.doc(operationId="updateProgram")
    @allow(Role.ADMIN)
    @blp.arguments(ProgramFieldsSchema)
    @blp.response(200, ProgramSchema)
    @blp.doc(parameters=[IF_MATCH])
    def patch(self, body, program_id: uuid.UUID):
        """Change a program (admin; If-Match required)"""
        program = PROGRAMS.load_or_404(program_id)
        return etag.guarded_update(program, current=lambda: ProgramSchema().dump(program),
                                   change=lambda: programs.update_program(program=program, changes=body))


@blp.route("/handoffs")
class Handoffs(MethodView):
    @blp.doc(operationId="createHandoff")
    @allow(*SENDERS)
    @blp.arguments(HandoffCreateSchema)
    @blp.response(201, HandoffSchema)
    @blp.alt_response(200, schema=HandoffSchema, success=True,
                      description="Already sent by this request (a retry with the same client `id`): the handoff "
                                  "as it is now.")
    @problem(blp, 409, "An open handoff to this destination exists, the episode is closed, the client `id` is "
                       "already used by a different record, or (`consent-required`) no Part 2 consent covers "
                       "this external program.")
    def post(self, body):
        """Send a handoff to the transition clinic or a community program"""
        episode = EPISODES.load_or_404(body["episode_id"], lock=True)
        handoff, created = service.send_handoff_once(episode=episode, fields=body, actor=current_user())
        return handoff, 201 if created else 200

    @blp.doc(operationId="listHandoffs")
    @allow(*SENDERS)
    @blp.arguments(HandoffQuerySchema, location="query")
    @blp.response(200, HandoffPageSchema)
    def get(self, query):
        """Handoffs on episodes in your scope, newest first"""
        cursor, limit = query.pop("cursor"), query.pop("limit")
        items, next_cursor = service.list_handoffs(user=current_user(), filters=query, cursor=cursor, limit=limit)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/handoffs/<uuid:handoff_id>")
class HandoffDetail(MethodView):
    @blp.doc(operationId="getHandoff")
    @allow(*SENDERS)
    @blp.response(200, HandoffSchema)
    def get(self, handoff_id: uuid.UUID):
        """One handoff with its events"""
        return service.read(handoff=HANDOFFS.load_or_404(handoff_id))


def _step(action: str, operation_id: str, schema, roles, summary: str):
    """A view class for one state-machine step (the same shape for all five)."""

    @blp.doc(operationId=operation_id)
    @allow(*roles)
    @blp.arguments(schema)
    @blp.response(200, HandoffSchema)
    @problem(blp, 409, "Not allowed from the handoff's current status (`invalid-transition`).")
    def post(self, body, handoff_id: uuid.UUID):
        handoff = HANDOFFS.load_or_404(handoff_id)  # the service locks episode, then handoff
        note = body.get("note") or body.get("reason")
        return service.take_step(handoff=handoff, action=action, actor=current_user(), note=note,
                                 arrived_at=body.get("arrived_at"))

    post.__doc__ = summary
    return type(f"Handoff{action.title().replace('_', '')}", (MethodView,), {"post": post})


for _action, _operation_id, _schema, _roles, _summary in (
    ("accept", "acceptHandoff", StepSchema, RECEIVERS, "Accept the handoff (the receiving side's answer)"),
    ("decline", "declineHandoff", ReasonedStepSchema, RECEIVERS, "Decline the handoff, with a reason"),
    ("complete", "completeHandoff", CompleteSchema, RECEIVERS,
     "The patient arrived: moves the episode to the new level"),
    ("no_show", "recordHandoffNoShow", StepSchema, RECEIVERS, "The patient did not arrive"),
    ("cancel", "cancelHandoff", ReasonedStepSchema, SENDERS, "Cancel an open handoff, with a reason"),
):
    blp.route(f"/handoffs/<uuid:handoff_id>/{_action.replace('_', '-')}")(
        _step(_action, _operation_id, _schema, _roles, _summary))
