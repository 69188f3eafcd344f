"""HTTP endpoints of the caseload (a coach's, most urgent first) and the clinic's review."""

from __future__ import annotations

from flask.views import MethodView

from backend.auth.access import allow, current_user
from backend.auth.models import Role
from backend.cases import caseload
from backend.cases.schemas import CaseloadQuerySchema, CaseloadReviewSchema, CaseloadSchema
from backend.errors import Problem
from backend.openapi import Blueprint

blp = Blueprint("caseload", __name__, url_prefix="/api/v1", description="Caseloads.")


@blp.route("/caseload")
class Caseload(MethodView):
    @allow(Role.COACH, Role.CLINIC_STAFF)
    @blp.arguments(CaseloadQuerySchema, location="query")
    @blp.response(200, CaseloadSchema)
    def get(self, query):
        """A coach's open episodes, most urgent first, with the reasons (one page)"""
        user = current_user()
        coach_id = query.get("coach_id")
        if user.role == Role.COACH:
            if coach_id not in (None, user.id):
                raise Problem(403, "Coaches see their own caseload.")
            coach_id = user.id
        elif coach_id is None:
            raise Problem(422, "Name the coach whose caseload you want.", errors={"coach_id": ["Required."]})
        return {"items": caseload.caseload(coach_id=coach_id), "next_cursor": None}


@blp.route("/caseloads")
class CaseloadReview(MethodView):
    @allow(Role.CLINIC_STAFF)
    @blp.response(200, CaseloadReviewSchema)
    def get(self):
        """Every coach's load, unassigned episodes, and the patients at risk of being lost"""
        return caseload.review()
