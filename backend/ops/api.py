"""Probes for the platform: `/health` (the process is up) and `/ready` (it can serve)."""

from __future__ import annotations

from flask.views import MethodView
from marshmallow import fields

from backend.auth.access import public
from backend.database import takes_write_lock
from backend.errors import OUTAGE_RETRY_AFTER, problem_response
from backend.openapi import Blueprint, problem
from backend.ops import service
from backend.schemas import OutputSchema

blp = Blueprint("ops", __name__, description="Liveness and readiness probes.")


class HealthSchema(OutputSchema):
    status = fields.Constant("ok", required=True, metadata={"type": "string", "enum": ["ok"]})


class ReadinessSchema(OutputSchema):
    status = fields.String(required=True, metadata={"description": "`ready`."})
    database = fields.String(required=True, metadata={
        "description": "`ok`; when not ready `unreachable` (refused, or no answer to a query), `not_answering` "
                       "(no answer within a second: frozen or overloaded) or `not_writable` (a write failed: "
                       "full disk, read-only, locked)."})
    migrations = fields.Dict(required=True, metadata={"description": "`current` and `head` revisions, `up_to_date`."})
    clock = fields.Dict(required=True, metadata={
        "description": "`last_heartbeat_at` of the clock process (null if it never ran)."})
    audit = fields.Dict(required=True, metadata={
        "description": "The audit trail's seal lag: `unsealed_events` (written, not yet chained by the clock's "
                       "sequencer) and `seal_lag_seconds` (how long the oldest of them has waited, in whole seconds; 0 "
                       "when none). "
                       "Informational: a lag does not make the service unready. Null when the database could "
                       "not be read."})


@blp.route("/health")
class Health(MethodView):
    @blp.doc(operationId="getHealth")
    @public
    @blp.doc(security=[])
    @blp.response(200, HealthSchema)
    def get(self):
        """The process is up (touches nothing else)"""
        return {}


@blp.route("/ready")
class Ready(MethodView):
    @blp.doc(operationId="getReadiness")
    @public
    @blp.doc(security=[])
    @blp.response(200, ReadinessSchema)
    @problem(blp, 503, "The database is unreachable, not answering or not taking writes, or its migrations are "
                       "behind; answered within 2 s.")
    @takes_write_lock  # it records a heartbeat: proof the database takes a write
    def get(self):
        """The database answers, takes a write and its migrations are current (answered within 2 s)"""
        report = service.readiness_and_commit()
        if not report.pop("ready"):
            return problem_response(503, f"Not ready: {_NOT_READY[report['database']]}.", type="service-unavailable",
                                    headers={"Retry-After": str(OUTAGE_RETRY_AFTER)}, **report)
        return {"status": "ready", **report}


_NOT_READY = {
    "ok": "migrations are behind",
    "unreachable": "the database is unreachable",
    "not_answering": "the database did not answer within a second",
    "not_writable": "the database does not take writes (full disk, read-only or locked)",
}
