"""HTTP endpoint of the phone's sync."""

from __future__ import annotations

from flask.views import MethodView

from backend.auth.access import current_user, signed_in
from backend.openapi import Blueprint, problem
from backend.sync import service
from backend.sync.schemas import SyncQuerySchema, SyncSchema

blp = Blueprint("sync", __name__, url_prefix="/api/v1", description="The phone's offline copy.")


@blp.route("/sync")
class Sync(MethodView):
    @blp.doc(operationId="syncChanges")
    @signed_in
    @blp.arguments(SyncQuerySchema, location="query")
    @blp.response(200, SyncSchema)
    @problem(blp, 409, "The cursor is older than the changes the server keeps: start again with a first sync.")
    def get(self, query):
        """What changed in your scope since `cursor` (everything in it, without one)"""
        return service.sync(user=current_user(), cursor=query["cursor"])
