"""HTTP endpoints of the read models: the caseload (a coach's, most urgent first), the clinic's
review, and an episode's timeline (documented with the episode's activities, as the contract
has always grouped it)."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend.auth.access import allow, current_user
from backend.auth.models import CASE_WORKERS, CLINICAL_ROLES, Role
from backend.caseload import service, timeline
from backend.caseload.schemas import (
    CaseloadQuerySchema,
    CaseloadReviewSchema,
    CaseloadSchema,
    TimelinePageSchema,
)
from backend.caseload.scopes import caseload_owner
from backend.cases.scopes import EPISODES
from backend.openapi import Blueprint

blp = Blueprint("caseload", __name__, url_prefix="/api/v1", description="Caseloads.")


@blp.route("/caseload")
class Caseload(MethodView):
    @blp.doc(operationId="listCaseload")
    @allow(*CASE_WORKERS)
    @blp.arguments(CaseloadQuerySchema, location="query")
    @blp.response(200, CaseloadSchema)
    def get(self, query):
        """A coach's open episodes, most urgent first, with the reasons (one page: no `next_cursor`)"""
        coach_id = caseload_owner(current_user(), query.get("coach_id"))
        return {"items": service.caseload(coach_id=coach_id), "next_cursor": None}


@blp.route("/caseloads")
class CaseloadReview(MethodView):
    @blp.doc(operationId="getCaseloadReview")
    @allow(Role.CLINIC_STAFF)
    @blp.response(200, CaseloadReviewSchema)
    def get(self):
        """Every coach's load, unassigned episodes, and the patients at risk of being lost"""
        return service.review()


@blp.route("/episodes/<uuid:episode_id>/timeline", tags=["activities"])
class EpisodeTimeline(MethodView):
    @blp.doc(operationId="getTimeline")
    @allow(*CLINICAL_ROLES)
    @blp.response(200, TimelinePageSchema)
    def get(self, episode_id: uuid.UUID):
        """Everything that happened in the episode, oldest first (one page; ED nurses see its
        lifecycle, levels and appointments, not the coach's encounters and tasks)"""
        items = timeline.for_episode(episode=EPISODES.load_or_404(episode_id), user=current_user())
        return {"items": items, "next_cursor": None}
