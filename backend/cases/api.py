"""HTTP endpoints of patients and episodes (api.md "Cases").

Each view: parse → check the role and the record's scope → call the service → return.
Editable records carry an ETag; their PATCH needs If-Match (`backend.etag`).
"""

from __future__ import annotations

import uuid

from flask.views import MethodView

from backend import etag
from backend.auth.access import allow, current_user
from backend.auth.models import CASE_WORKERS, CLINICAL_ROLES, REGISTRARS
from backend.cases import service
from backend.cases.schemas import (
    CloseSchema,
    CoachAssignmentSchema,
    DischargeSchema,
    EpisodeCreateSchema,
    EpisodePageSchema,
    EpisodeQuerySchema,
    EpisodeSchema,
    EpisodeUpdateSchema,
    PatientCreateSchema,
    PatientPageSchema,
    PatientQuerySchema,
    PatientSchema,
    PatientUpdateSchema,
    SmsConsentSchema,
)
from backend.cases.scopes import EPISODES, PATIENTS
from backend.openapi import IF_MATCH, Blueprint, problem

blp = Blueprint("cases", __name__, url_prefix="/api/v1", description="Patients and episodes.")



@blp.route("/patients")
class Patients(MethodView):
    @blp.doc(operationId="createPatient")
    @allow(*REGISTRARS)
    @blp.arguments(PatientCreateSchema)
    @blp.response(201, PatientSchema, headers={"ETag": {"schema": {"type": "string"}}})
    @problem(blp, 409, "The MRN is already registered: `existing_id` names that patient.")
    def post(self, body):
        """Register a patient"""
        patient = service.register_patient(fields=body, actor=current_user())
        return patient, etag.headers(patient)

    @blp.doc(operationId="listPatients")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(PatientQuerySchema, location="query")
    @blp.response(200, PatientPageSchema)
    def get(self, query):
        """Patients: exact `mrn` lookup, name search `q` (clinic staff), or those in your scope"""
        patients, next_cursor = service.list_patients(user=current_user(), mrn=query.get("mrn"), q=query.get("q"),
                                                      cursor=query["cursor"], limit=query["limit"])
        return {"items": patients, "next_cursor": next_cursor}


@blp.route("/patients/<uuid:patient_id>")
class PatientDetail(MethodView):
    @blp.doc(operationId="getPatient")
    @allow(*CLINICAL_ROLES)
    @blp.response(200, PatientSchema)
    def get(self, patient_id: uuid.UUID):
        """One patient"""
        patient = service.read_patient(patient=PATIENTS.load_or_404(patient_id))
        return patient, etag.headers(patient)

    @blp.doc(operationId="updatePatient")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(PatientUpdateSchema)
    @blp.response(200, PatientSchema)
    @blp.doc(parameters=[IF_MATCH])
    def patch(self, body, patient_id: uuid.UUID):
        """Change a patient (If-Match required)"""
        patient = PATIENTS.load_or_404(patient_id)
        return etag.guarded_update(patient, current=lambda: PatientSchema().dump(service.read_patient(patient=patient)),
                                   change=lambda: service.update_patient(patient=patient, changes=body))


@blp.route("/patients/<uuid:patient_id>/sms-consent")
class PatientSmsConsent(MethodView):
    @blp.doc(operationId="setSmsConsent")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(SmsConsentSchema)
    @blp.response(200, PatientSchema)
    def put(self, body, patient_id: uuid.UUID):
        """Record the patient's consent to texts (or its withdrawal), and how it was given"""
        patient = service.set_sms_consent(patient=PATIENTS.load_or_404(patient_id, lock=True), **body)
        return patient, etag.headers(patient)


@blp.route("/episodes")
class Episodes(MethodView):
    @blp.doc(operationId="createEpisode")
    @allow(*REGISTRARS)
    @blp.arguments(EpisodeCreateSchema)
    @blp.response(201, EpisodeSchema)
    @problem(blp, 409, "The patient already has an open episode (`existing_id`).")
    def post(self, body):
        """Open an episode at the ED or inpatient level"""
        # Any patient on file, not only those in the caller's scope: a returning patient found
        # by MRN must get a new episode rather than a duplicate registration.
        patient = service.patient_for_new_episode(patient_id=body["patient_id"])
        episode = service.open_episode(patient=patient, level=body["level"],
                                       presenting_reason=body["presenting_reason"], arrived_at=body["arrived_at"],
                                       coach_id=body.get("coach_id"), flags=body.get("flags", {}),
                                       actor=current_user())
        return episode, etag.headers(episode)

    @blp.doc(operationId="listEpisodes")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(EpisodeQuerySchema, location="query")
    @blp.response(200, EpisodePageSchema)
    def get(self, query):
        """Episodes in your scope, newest first"""
        cursor, limit = query.pop("cursor"), query.pop("limit")
        episodes, next_cursor = service.list_episodes(user=current_user(), filters=query, cursor=cursor, limit=limit)
        return {"items": episodes, "next_cursor": next_cursor}


@blp.route("/episodes/<uuid:episode_id>")
class EpisodeDetail(MethodView):
    @blp.doc(operationId="getEpisode")
    @allow(*CLINICAL_ROLES)
    @blp.response(200, EpisodeSchema)
    def get(self, episode_id: uuid.UUID):
        """One episode, with its level history and flags"""
        episode = service.read_episode(episode=EPISODES.load_or_404(episode_id))
        return episode, etag.headers(episode)

    @blp.doc(operationId="updateEpisode")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(EpisodeUpdateSchema)
    @blp.response(200, EpisodeSchema)
    @blp.doc(parameters=[IF_MATCH])
    def patch(self, body, episode_id: uuid.UUID):
        """Change an episode's presenting reason, arrival or flags (If-Match required)"""
        episode = EPISODES.load_or_404(episode_id)
        return etag.guarded_update(episode, current=lambda: EpisodeSchema().dump(service.read_episode(episode=episode)),
                                   change=lambda: service.update_episode(episode=episode, changes=body,
                                                                         actor=current_user()))


@blp.route("/episodes/<uuid:episode_id>/discharge")
class EpisodeDischarge(MethodView):
    @blp.doc(operationId="dischargeEpisode")
    @allow(*CLINICAL_ROLES)
    @blp.arguments(DischargeSchema)
    @blp.response(200, EpisodeSchema)
    @problem(blp, 409, "Already discharged, or the episode is closed.")
    def post(self, body, episode_id: uuid.UUID):
        """Record the discharge from the ED or ward (starts the post-discharge check-ins)"""
        episode = service.discharge(episode=EPISODES.load_or_404(episode_id, lock=True), actor=current_user(),
                                    **body)
        return episode, etag.headers(episode)


@blp.route("/episodes/<uuid:episode_id>/coach")
class EpisodeCoach(MethodView):
    @blp.doc(operationId="assignCoach")
    @allow(*REGISTRARS)
    @blp.arguments(CoachAssignmentSchema)
    @blp.response(200, EpisodeSchema)
    def put(self, body, episode_id: uuid.UUID):
        """Assign the primary coach (an active coach); their predecessor's open tasks move along"""
        episode = service.assign_coach(episode=EPISODES.load_or_404(episode_id, lock=True), actor=current_user(),
                                       **body)
        return episode, etag.headers(episode)


@blp.route("/episodes/<uuid:episode_id>/close")
class EpisodeClose(MethodView):
    @blp.doc(operationId="closeEpisode")
    @allow(*CASE_WORKERS)
    @blp.arguments(CloseSchema)
    @blp.response(200, EpisodeSchema)
    @problem(blp, 409, "The episode is already closed.")
    def post(self, body, episode_id: uuid.UUID):
        """Close the episode with a reason (cancels open tasks, handoffs and queued texts)"""
        episode = service.close_episode(episode=EPISODES.load_or_404(episode_id, lock=True), reason=body["reason"],
                                        note=body.get("note"), actor=current_user())
        return episode, etag.headers(episode)
