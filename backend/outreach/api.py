"""HTTP endpoints of outreach: message templates (read by all, written by admins), a patient's
texts, the inbox of replies and the review list of texts that need a person."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend.auth.access import allow, current_user, open_while_pending, signed_in
from backend.auth.models import CASE_WORKERS, Role
from backend.cases.scopes import PATIENTS
from backend.openapi import Blueprint, problem
from backend.outreach import service, templates
from backend.outreach.schemas import (
    InboxQuerySchema,
    MessageCreateSchema,
    MessagePageSchema,
    MessageSchema,
    ReviewQuerySchema,
    TemplateCreateSchema,
    TemplatePageSchema,
    TemplateSchema,
    TemplateUpdateSchema,
)
from backend.outreach.scopes import INBOX, TEMPLATES
from backend.schemas import PageQuerySchema

blp = Blueprint("outreach", __name__, url_prefix="/api/v1", description="Texting patients.")



@blp.route("/message-templates")
class Templates(MethodView):
    @blp.doc(operationId="listMessageTemplates")
    @open_while_pending
    @signed_in
    @blp.response(200, TemplatePageSchema)
    def get(self):
        """Message templates, by name and language (one page)"""
        return {"items": templates.list_all(), "next_cursor": None}

    @blp.doc(operationId="createMessageTemplate")
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
    @blp.doc(operationId="updateMessageTemplate")
    @allow(Role.ADMIN)
    @blp.arguments(TemplateUpdateSchema)
    @blp.response(200, TemplateSchema)
    def patch(self, body, template_id: uuid.UUID):
        """Change a template (admin); checked by the privacy rules"""
        return templates.update(template=TEMPLATES.load_or_404(template_id), changes=body)


@blp.route("/patients/<uuid:patient_id>/messages")
class PatientMessages(MethodView):
    @blp.doc(operationId="listMessages")
    @allow(*CASE_WORKERS)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, query, patient_id: uuid.UUID):
        """The patient's texts, both directions, newest first, with their statuses"""
        items, next_cursor = service.thread(patient=PATIENTS.load_or_404(patient_id), **query)
        return {"items": items, "next_cursor": next_cursor}

    @blp.doc(operationId="sendMessage")
    @allow(*CASE_WORKERS)
    @blp.arguments(MessageCreateSchema)
    @blp.response(202, MessageSchema, description="Queued; the dispatcher sends it within seconds (or at `send_at`).")
    @blp.alt_response(200, schema=MessageSchema, success=True,
                      description="Already queued by this request (a retry with the same client `id`): the text as "
                                  "it is now; nothing is queued again.")
    @problem(blp, 409, "`sms-not-permitted`: the patient is not opted in, or has no phone that takes texts.")
    @problem(blp, 422, "`message-privacy` (with `words`) when the text would reveal the service and "
                       "`confirm_privacy` is not set; `validation-error` otherwise.")
    def post(self, body, patient_id: uuid.UUID):
        """Text the patient: free text or a template, now or at `send_at`"""
        message, created = service.compose_once(patient=PATIENTS.load_or_404(patient_id), fields=body,
                                                actor=current_user())
        return message, 202 if created else 200


@blp.route("/inbox")
class Inbox(MethodView):
    @blp.doc(operationId="listInbox")
    @allow(*CASE_WORKERS)
    @blp.arguments(InboxQuerySchema, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, query):
        """Replies from your patients (clinic staff: all, and unknown numbers), newest first"""
        items, next_cursor = service.inbox(user=current_user(), unread=query.get("unread"), cursor=query["cursor"],
                                           limit=query["limit"])
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/inbox/<uuid:message_id>/read")
class InboxRead(MethodView):
    @blp.doc(operationId="markReplyRead")
    @allow(*CASE_WORKERS)
    @blp.response(200, MessageSchema)
    def post(self, message_id: uuid.UUID):
        """Mark a reply read (again is harmless)"""
        return service.mark_read(message=INBOX.load_or_404(message_id), user=current_user())


@blp.route("/messages")
class MessagesForReview(MethodView):
    @blp.doc(operationId="listMessagesNeedingReview")
    @allow(Role.CLINIC_STAFF)
    @blp.arguments(ReviewQuerySchema, location="query")
    @blp.response(200, MessagePageSchema)
    def get(self, query):
        """Texts that need a person: outcome `unknown` (never retried automatically), `failed`, `blocked`"""
        items, next_cursor = service.needing_review(status=query.get("status"), cursor=query["cursor"],
                                                    limit=query["limit"])
        return {"items": items, "next_cursor": next_cursor}
