"""HTTP endpoints of the FHIR export (in the phone app's contract; answers `application/fhir+json`)."""

from __future__ import annotations

import uuid

from flask import Response
from flask.views import MethodView

from backend.auth.access import allow, current_user
from backend.auth.models import Role
from backend.cases.scopes import EPISODES
from backend.interop import exports
from backend.interop.schemas import FhirExportCreateSchema
from backend.openapi import Blueprint, problem

blp = Blueprint("interop", __name__, url_prefix="/api/v1", description="The episode as FHIR R4.")

FHIR_JSON = "application/fhir+json"


def _bundle_answer(description: str) -> dict:
    return {"description": description, "content": {FHIR_JSON: {"schema": {
        "type": "object", "additionalProperties": True, "required": ["resourceType", "type"],
        "properties": {"resourceType": {"type": "string", "enum": ["Bundle"]}, "type": {"type": "string"},
                       "entry": {"type": "array", "items": {"type": "object", "additionalProperties": True}}},
        "description": "A FHIR R4 Bundle (type `collection`); every resource labelled R / 42CFRPart2 / ETH."}}}}


@blp.route("/episodes/<uuid:episode_id>/fhir")
class EpisodeFhir(MethodView):
    @blp.doc(operationId="getEpisodeFhir", responses={"200": _bundle_answer("The episode as a FHIR R4 Bundle.")})
    @allow(Role.COACH, Role.CLINIC_STAFF)
    def get(self, episode_id: uuid.UUID):
        """The episode as a FHIR R4 Bundle (patient, episode of care, handoffs, appointments, contacts,
        consents, naloxone and medication supplies), every resource labelled as SUD-protected"""
        body = exports.read_bundle(episode=EPISODES.load_or_404(episode_id))
        return Response(body, status=200, mimetype=FHIR_JSON)


@blp.route("/episodes/<uuid:episode_id>/fhir-exports")
class EpisodeFhirExports(MethodView):
    @blp.doc(operationId="exportEpisodeFhir", responses={
        "201": _bundle_answer("The Bundle to deliver: only the covered information, the §2.32 notice in a "
                              "Composition; recorded in the accounting of disclosures."),
        "200": _bundle_answer("Already exported by this request (a retry with the same client `id`).")})
    @allow(Role.CLINIC_STAFF)
    @blp.arguments(FhirExportCreateSchema)
    @problem(blp, 409, "`consent-required`: no active consent names the program and covers every kind requested; "
                       "or the client `id` is already used by a different record.")
    def post(self, body, episode_id: uuid.UUID):
        """Export the episode to a program outside the hospital's SUD program (a Part 2 disclosure)"""
        episode = EPISODES.load_or_404(episode_id)
        text, created = exports.export(episode=episode, fields=body, actor=current_user())
        return Response(text, status=201 if created else 200, mimetype=FHIR_JSON)
