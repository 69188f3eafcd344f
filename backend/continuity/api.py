"""HTTP endpoints of the naloxone log and medication supplies (api.md "Cases").

Each view: parse → check the role and the episode's scope (the encounters' rule: the episode's)
→ call the service → return."""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend.auth.access import allow, current_user
from backend.auth.models import CLINICAL_ROLES
from backend.cases.scopes import EPISODES
from backend.continuity import medications, naloxone
from backend.continuity.schemas import (
    FillSchema,
    MedicationSupplyCreateSchema,
    MedicationSupplyPageSchema,
    MedicationSupplySchema,
    NaloxoneCreateSchema,
    NaloxoneEventPageSchema,
    NaloxoneEventSchema,
)
from backend.continuity.scopes import MEDICATION_SUPPLIES
from backend.openapi import Blueprint, problem
from backend.schemas import PageQuerySchema

blp = Blueprint("continuity", __name__, url_prefix="/api/v1",
                description="Continuity of treatment: the naloxone log and medication supplies.")

_CREATED = "201 when created; 200 when a retry with the same client id found it already created."


@blp.route("/episodes/<uuid:episode_id>/naloxone")
class NaloxoneLog(MethodView):
    @blp.doc(operationId="createNaloxoneEntry")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(NaloxoneCreateSchema)
    @blp.response(201, NaloxoneEventSchema, description=_CREATED)
    @blp.alt_response(200, schema=NaloxoneEventSchema, success=True, description="Already logged (a retry).")
    @problem(blp, 409, "The episode is closed, or the id belongs to another entry.")
    def post(self, body, episode_id: uuid.UUID):
        """Log a naloxone kit given, or a reported use (which creates a task to replace the kit)"""
        entry, created = naloxone.log(episode=EPISODES.load_or_404(episode_id, lock=True), fields=body,
                                      actor=current_user())
        return entry, 201 if created else 200

    @blp.doc(operationId="listNaloxoneLog")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, NaloxoneEventPageSchema)
    def get(self, query, episode_id: uuid.UUID):
        """The episode's naloxone log, newest first"""
        items, next_cursor = naloxone.list_log(episode=EPISODES.load_or_404(episode_id), **query)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/episodes/<uuid:episode_id>/medications")
class MedicationSupplies(MethodView):
    @blp.doc(operationId="createMedicationSupply")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(MedicationSupplyCreateSchema)
    @blp.response(201, MedicationSupplySchema, description=_CREATED)
    @blp.alt_response(200, schema=MedicationSupplySchema, success=True, description="Already logged (a retry).")
    @problem(blp, 409, "The episode is closed, or the id belongs to another supply.")
    def post(self, body, episode_id: uuid.UUID):
        """Log a supply of medication for OUD (`covered_until` is computed in the patient's time zone)"""
        supply, created = medications.log_supply(episode=EPISODES.load_or_404(episode_id, lock=True), fields=body,
                                                 actor=current_user())
        return supply, 201 if created else 200

    @blp.doc(operationId="listMedicationSupplies")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, MedicationSupplyPageSchema)
    def get(self, query, episode_id: uuid.UUID):
        """The episode's medication supplies, the latest start first"""
        items, next_cursor = medications.list_supplies(episode=EPISODES.load_or_404(episode_id), **query)
        return {"items": items, "next_cursor": next_cursor}


@blp.route("/medications/<uuid:supply_id>/fill")
class MedicationFill(MethodView):
    @blp.doc(operationId="recordMedicationFill")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(FillSchema)
    @blp.response(200, MedicationSupplySchema)
    @problem(blp, 409, "The episode is closed.")
    def post(self, body, supply_id: uuid.UUID):
        """Record whether the pharmacy filled the prescription (`filled` or `not_filled`)"""
        return medications.record_fill(supply=MEDICATION_SUPPLIES.load_or_404(supply_id), status=body["status"])
