"""HTTP endpoints of outreach: message templates (read by all, written by admins)."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend.auth.access import Scope, allow, signed_in
from backend.auth.models import Role
from backend.openapi import Blueprint, problem
from backend.outreach import templates
from backend.outreach.models import MessageTemplate
from backend.outreach.schemas import TemplateCreateSchema, TemplatePageSchema, TemplateSchema, TemplateUpdateSchema

blp = Blueprint("outreach", __name__, url_prefix="/api/v1", description="Texting patients.")

#: Templates hold no patient data: every signed-in role reads them.
TEMPLATES = Scope(MessageTemplate, "message_template", lambda user: MessageTemplate.id.is_not(None))


@blp.route("/message-templates")
class Templates(MethodView):
    @signed_in
    @blp.response(200, TemplatePageSchema)
    def get(self):
        """Message templates, by name (one page)"""
        return {"items": templates.list_all(), "next_cursor": None}

    @allow(Role.ADMIN)
    @blp.arguments(TemplateCreateSchema)
    @blp.response(201, TemplateSchema)
    @problem(blp, 422, "`message-privacy` (with `words`) when the text would reveal the service; "
                       "`validation-error` for unknown placeholders or more than two segments.")
    def post(self, body):
        """Add a template (admin); checked by the privacy rules"""
        return templates.create(**body)


@blp.route("/message-templates/<uuid:template_id>")
class TemplateDetail(MethodView):
    @allow(Role.ADMIN)
    @blp.arguments(TemplateUpdateSchema)
    @blp.response(200, TemplateSchema)
    def patch(self, body, template_id: uuid.UUID):
        """Change a template (admin); checked by the privacy rules"""
        return templates.update(template=TEMPLATES.load_or_404(template_id), changes=body)
