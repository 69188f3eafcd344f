"""HTTP endpoint of the outcomes report (JSON, or CSV for spreadsheets)."""

from __future__ import annotations

from flask import Response, request
from flask.views import MethodView

from backend.auth.access import allow
from backend.auth.models import Role
from backend.database import takes_write_lock
from backend.errors import Problem
from backend.openapi import Blueprint, problem
from backend.reports import service
from backend.reports.schemas import OutcomesQuerySchema, OutcomesSchema

blp = Blueprint("reports", __name__, url_prefix="/api/v1", description="Program reports.")

CSV = "text/csv"
#: The 200 answer in both forms: given explicitly, the content replaces what @blp.response says.
_BOTH_FORMS = {"description": "The report.", "content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Outcomes"}},
    CSV: {"schema": {"type": "string"}, "example": "measure,population,numerator,denominator,pending,rate,…"}}}


#: The answer's form depends on Accept (no cache keeps it: every answer is no-store).
_VARY = {"Vary": "Accept"}


@blp.route("/reports/outcomes")
class Outcomes(MethodView):
    @blp.doc(operationId="getOutcomesReport")
    @allow(Role.CLINIC_STAFF)
    @blp.arguments(OutcomesQuerySchema, location="query")
    @blp.response(200, OutcomesSchema)
    @blp.doc(responses={"200": _BOTH_FORMS})
    @problem(blp, 406, "The request's Accept allows neither application/json nor text/csv.")
    @takes_write_lock  # it brings the stored facts up to date first
    def get(self, query):
        """The program measures for the episodes discharged in a period (`Accept: text/csv` for CSV)"""
        # No Accept header accepts anything (werkzeug's best_match then has nothing to match).
        form = request.accept_mimetypes.best_match(["application/json", CSV]) if request.accept_mimetypes \
            else "application/json"
        if form is None:
            raise Problem(406, f"The report comes as application/json or {CSV}; the request accepts neither.")
        report = service.outcomes(start=query["from_"], end=query["to"], coach_id=query.get("coach_id"),
                                  presenting_reason=query.get("presenting_reason"))
        if form == CSV:
            name = f"outcomes_{report['from'].isoformat()}_{report['to'].isoformat()}.csv"
            return Response(service.as_csv(report), mimetype=CSV,
                            headers={"Content-Disposition": f'attachment; filename="{name}"', **_VARY})
        return report, 200, _VARY
