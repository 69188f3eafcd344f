"""Probes for the platform: `/health` (the process is up) and `/ready` (it can serve)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields

from backend.auth.access import public
from backend.errors import problem_response
from backend.openapi import Blueprint, problem
from backend.ops import service
from backend.schemas import OutputSchema

blp = Blueprint("ops", __name__, description="Liveness and readiness probes.")


class HealthSchema(OutputSchema):
    status = fields.Constant("ok", required=True)


class ReadinessSchema(OutputSchema):
    status = fields.String(required=True, metadata={"description": "`ready`."})
    database = fields.String(required=True, metadata={"description": "`ok` or `unreachable`."})
    migrations = fields.Dict(required=True, metadata={"description": "`current` and `head` revisions, `up_to_date`."})
    clock = fields.Dict(required=True, metadata={
        "description": "`last_heartbeat_at` of the clock process (null if it never ran)."})


@blp.route("/health")
class Health(MethodView):
    @public
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up (touches nothing else)"""
        return {}


@blp.route("/ready")
class Ready(MethodView):
    @public
    @blp.doc(security=[])
    @blp.response(200, ReadinessSchema)
    @problem(blp, 503, "The database is unreachable or its migrations are behind.")
    def get(self):
        """The database answers and its migrations are current"""
        report = service.readiness()
        ready = report.pop("ready")
        if not ready:
            problem = "the database is unreachable" if report["database"] != "ok" else "migrations are behind"
            return problem_response(503, f"Not ready: {problem}.", type="service-unavailable",
                                    **report)
        return {"status": "ready", **report}
