"""HTTP endpoints of 42 CFR Part 2 consents and the accounting of disclosures."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend.auth.access import allow, current_user
from backend.auth.models import CASE_WORKERS, Role
from backend.cases.scopes import PATIENTS
from backend.consents import service as consents
from backend.consents.schemas import (
    ConsentCreateSchema,
    ConsentPageSchema,
    ConsentSchema,
    DisclosurePageSchema,
    DisclosureQuerySchema,
    RevokeSchema,
)
from backend.consents.scopes import CONSENTS
from backend.openapi import Blueprint, problem
from backend.schemas import PageQuerySchema

blp = Blueprint("consents", __name__, url_prefix="/api/v1", description="42 CFR Part 2 consent and disclosures.")


@blp.route("/patients/<uuid:patient_id>/consents")
class PatientConsents(MethodView):
    @blp.doc(operationId="createConsent")
    @allow(*CASE_WORKERS)
    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, ConsentSchema)
    @blp.alt_response(200, schema=ConsentSchema, success=True,
                      description="Already recorded by this request (a retry with the same client `id`).")
    @problem(blp, 409, "The client `id` is already used by a different record.")
    def post(self, body, patient_id: uuid.UUID):
        """Record a Part 2 consent (every element required; never edited afterwards)"""
        consent, created = consents.record_consent_once(patient=PATIENTS.load_or_404(patient_id), fields=body,
                                                        actor=current_user())
        return consent, 201 if created else 200

    @blp.doc(operationId="listConsents")
    @allow(*CASE_WORKERS)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, ConsentPageSchema)
    def get(self, query, patient_id: uuid.UUID):
        """The patient's consents, newest first, revoked and expired ones included"""
        items, next_cursor = consents.list_consents(patient=PATIENTS.load_or_404(patient_id), **query)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/consents/<uuid:consent_id>/revoke")
class ConsentRevoke(MethodView):
    @blp.doc(operationId="revokeConsent")
    @allow(*CASE_WORKERS)
    @blp.arguments(RevokeSchema)
    @blp.response(200, ConsentSchema)
    def post(self, body, consent_id: uuid.UUID):
        """Revoke a consent: every later disclosure under it is refused at once"""
        return consents.revoke(consent=CONSENTS.load_or_404(consent_id, lock=True), method=body["method"],
                               revoked_at=body.get("revoked_at"), actor=current_user())


@blp.route("/patients/<uuid:patient_id>/disclosures")
class PatientDisclosures(MethodView):
    @blp.doc(operationId="listDisclosures")
    @allow(Role.CLINIC_STAFF)
    @blp.arguments(DisclosureQuerySchema, location="query")
    @blp.response(200, DisclosurePageSchema)
    def get(self, query, patient_id: uuid.UUID):
        """The accounting of disclosures (the last three years by default), newest first"""
        items, next_cursor = consents.accounting(patient=PATIENTS.load_or_404(patient_id), since=query.get("since"),
                                                 cursor=query["cursor"], limit=query["limit"])
        return {"items": items, "next_cursor": next_cursor}
