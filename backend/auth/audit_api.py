"""HTTP endpoint of the audit trail, for admins (read only: no endpoint changes or deletes an event).

It stands with identity, not in `backend.audit`: the trail is written below identity (every
sign-in, refusal and look at a record is recorded), so the face that reads it, which needs
identity's access rules, must stand above both.
"""

from __future__ import annotations

from flask.views import MethodView

from backend.audit import service
from backend.audit.outbox import reads_the_trail
from backend.audit.schemas import AuditEventPageSchema, AuditQuerySchema
from backend.auth.access import allow
from backend.auth.models import Role
from backend.openapi import Blueprint

blp = Blueprint("audit", __name__, url_prefix="/api/v1", description="The audit trail.")


@blp.route("/audit-events")
class AuditEvents(MethodView):
    @blp.doc(operationId="listAuditEvents")
    @allow(Role.ADMIN)
    @blp.arguments(AuditQuerySchema, location="query")
    @blp.response(200, AuditEventPageSchema)
    @reads_the_trail  # on SQLite the audit outbox's events are copied into the trail first
    def get(self, query):
        """Audit events, newest first (admin)"""
        cursor, limit = query.pop("cursor"), query.pop("limit")
        events, next_cursor = service.list_events(**query, cursor=cursor, limit=limit)
        return {"items": events, "next_cursor": next_cursor}
