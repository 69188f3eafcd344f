"""The console's pages: signing in and out, and the ED nurse's journey — find a patient by MRN,
register them, open an episode, discharge, hand off (console.md "Who does what").

Each view parses its form with the API's schema (`forms.load`), checks the record's scope with
the API's `Scope`, and calls the same service as the API. A refusal (a service's Problem) rolls
the work back and shows the form again with the input kept and the message by its field.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from flask import redirect, render_template, request, session, url_for

from backend import unit_of_work
from backend.auth import service as auth_service
from backend.auth.access import (
    allow,
    current_session,
    current_user,
    open_while_pending,
    public,
    signed_in,
)
from backend.auth.models import REGISTRARS, Role
from backend.cases import service as cases
from backend.cases.models import Episode, Patient
from backend.cases.schemas import (
    DischargeSchema,
    EpisodeCreateSchema,
    PatientCreateSchema,
)
from backend.cases.scopes import EPISODES, PATIENTS
from backend.console import bp, forms
from backend.console import session as console_session
from backend.continuity import naloxone
from backend.continuity.schemas import NaloxoneCreateSchema
from backend.errors import Problem
from backend.extensions import db
from backend.handoffs import service as handoffs
from backend.handoffs.models import Handoff
from backend.handoffs.schemas import HandoffCreateSchema
from backend.programs.models import Program

#: Where each role starts.
HOME = {Role.ED_NURSE: "console.find_patient", Role.CLINIC_STAFF: "console.review",
        Role.COACH: "console.my_caseload", Role.ADMIN: "console.users"}

METHOD_LABELS = {"warm_in_person": "Warm handoff, in person", "warm_phone": "Warm handoff, by phone",
                 "warm_video": "Warm handoff, by video", "referral": "Referral"}
MOUD_LABELS = {"none": "None", "buprenorphine": "Buprenorphine", "methadone": "Methadone",
               "naltrexone": "Naltrexone"}
REASON_LABELS = {"overdose": "Overdose", "withdrawal": "Withdrawal", "other": "Other"}
TRANSITION_CLINIC = "transition_clinic"


def page(template: str, status: int = 200, **context):
    return render_template(f"console/{template}", shown=forms.shown, **context), status


def refused(problem: Problem) -> None:
    """Undo the unit's writes before a form is shown again: nothing half-written."""
    unit_of_work.roll_back(problem.code)


# --- signing in and out -------------------------------------------------------------------

@bp.route("/")
@open_while_pending
@signed_in
def home():
    return redirect(url_for(HOME[current_user().role]))


@bp.route("/sign-in", methods=["GET", "POST"])
@public
def sign_in():
    back = console_session.local_path(request.values.get("next"))
    notice = "You were signed out after a while without activity, or elsewhere. Sign in again to go on." \
        if request.args.get("ended") else None
    if request.method == "GET":
        return page("sign_in.html", back=back, notice=notice, username="")
    username, password = request.form.get("username", ""), request.form.get("password", "")
    try:
        issued = auth_service.sign_in(username=username, password=password, device_name=console_session.DEVICE_NAME,
                                      address=request.remote_addr or "", device_cookie=console_session.device_cookie())
    except auth_service.SignInThrottled as throttled:
        minutes = -(-throttled.retry_after_seconds // 60)
        return page("sign_in.html", 429, back=back, username=username,
                    error=f"Too many failed sign-ins for this username. Try again in {minutes} minutes.")
    except auth_service.InvalidCredentials:
        return page("sign_in.html", 401, back=back, username=username,
                    error="The username or password is not right.")
    if issued.session.user.role == Role.INTERFACE:  # a service account: the ADT feed is all it may reach
        auth_service.revoke_session(session=issued.session, reason="signed_out")
        return page("sign_in.html", 403, back=back, username=username,
                    error="This is a service account for the hospital feed: it cannot use the console.")
    session.clear()  # a fresh CSRF secret for the new session
    response = redirect(back or url_for("console.home"))
    console_session.remember(response, issued)
    return response


@bp.route("/sign-out", methods=["POST"])
@open_while_pending
@signed_in
def sign_out():
    auth_service.revoke_session(session=current_session(), reason="signed_out")
    session.clear()
    response = redirect(url_for("console.sign_in", signed_out=1))
    console_session.forget(response)
    return response


# --- the ED nurse's journey ---------------------------------------------------------------

@bp.route("/patients/find", methods=["GET", "POST"])
@allow(*REGISTRARS, Role.COACH)
def find_patient():
    """Find by exact MRN (posted, so the MRN is never in a URL): the patient's page, or the
    registration form with the MRN filled in."""
    if request.method == "GET":
        return page("find_patient.html", mrn="")
    mrn = request.form.get("mrn", "").strip()
    if not mrn:
        return page("find_patient.html", 422, mrn=mrn, errors={"mrn": ["Enter the MRN."]})
    patients, _ = cases.list_patients(user=current_user(), mrn=mrn, q=None, cursor=None, limit=1)
    if patients:  # shown here, as the API's MRN lookup shows it: a returning patient may be outside the scope
        return _patient_page(cases.read_patient(patient=patients[0]))
    if current_user().role not in REGISTRARS:
        return page("find_patient.html", 404, mrn=mrn, errors={"mrn": ["No patient of yours has this MRN."]})
    return page("register.html", form={"mrn": mrn}, not_found=True)


#: The registration form's fields, by the schema's names.
REGISTER_FIELDS = ("mrn", "given_name", "family_name", "birth_date", "phone")


@bp.route("/patients", methods=["POST"])
@allow(*REGISTRARS)
def register_patient():
    form = {name: request.form.get(name, "").strip() for name in REGISTER_FIELDS}
    data = {name: value for name, value in form.items() if value}
    try:
        patient = forms.submit(PatientCreateSchema(), data,
                               lambda fields: cases.register_patient(fields=fields, actor=current_user()))
    except forms.FormErrors as invalid:
        existing = invalid.problem.extra.get("existing_id") if invalid.problem else None
        return page("register.html", invalid.status, form=form, errors=invalid.errors, existing_id=existing)
    return redirect(url_for("console.patient", patient_id=patient.id))


@bp.route("/patients/<uuid:patient_id>")
@allow(*REGISTRARS, Role.COACH)
def patient(patient_id: uuid.UUID):
    return _patient_page(cases.read_patient(patient=PATIENTS.load_or_404(patient_id)))


def _patient_page(record: Patient, status: int = 200, **context):
    """The patient, their episodes (those the user may open), and the form to open one."""
    episodes = list(db.session.scalars(EPISODES.where(sa.select(Episode).where(Episode.patient_id == record.id))
                                       .order_by(Episode.arrived_at.desc())))
    context.setdefault("form", {"arrived_at": forms.now_input(), "presenting_reason": ""})
    return page("patient.html", status, patient=record, episodes=episodes, reasons=REASON_LABELS,
                open_episode_id=cases.open_episode_id(record.id), **context)


@bp.route("/patients/<uuid:patient_id>/episodes", methods=["POST"])
@allow(*REGISTRARS)
def open_episode(patient_id: uuid.UUID):
    # Any patient on file, as the API: a returning patient found by MRN gets a new episode.
    record = cases.patient_for_new_episode(patient_id=patient_id)
    form = {"arrived_at": request.form.get("arrived_at", ""), "presenting_reason": request.form.get(
        "presenting_reason", "")}
    data = {"patient_id": str(record.id), "level": "emergency_department",
            "arrived_at": forms.timestamp(form["arrived_at"]), "presenting_reason": form["presenting_reason"]}
    try:
        episode = forms.submit(EpisodeCreateSchema(), {k: v for k, v in data.items() if v is not None},
                               lambda fields: cases.open_episode(
                                   patient=record, level=fields["level"], presenting_reason=fields["presenting_reason"],
                                   arrived_at=fields["arrived_at"], coach_id=None, flags={}, actor=current_user()))
    except forms.FormErrors as invalid:
        return _patient_page(record, invalid.status, form=form, errors=invalid.errors)
    return redirect(url_for("console.episode", episode_id=episode.id))


@bp.route("/episodes/<uuid:episode_id>")
@allow(*REGISTRARS, Role.COACH)
def episode(episode_id: uuid.UUID):
    record = cases.read_episode(episode=EPISODES.load_or_404(episode_id))
    return _episode_page(record)


def _episode_page(record: Episode, status: int = 200, **context):
    from backend.console import (  # the clinic's parts (clinic.py), naloxone and medication
        clinic,
        continuity,
    )

    context = {**clinic.episode_parts(record), **continuity.parts(record), **context}
    handoff_list = list(db.session.scalars(sa.select(Handoff).where(Handoff.episode_id == record.id)
                                           .order_by(Handoff.created_at.desc())))
    programs = list(db.session.scalars(sa.select(Program).where(Program.accepting_patients)
                                       .order_by(Program.name)))
    context.setdefault("discharge_form", {"discharged_at": forms.now_input()})
    context.setdefault("handoff_form", {"to": TRANSITION_CLINIC, "method": "warm_in_person", "moud": "none"})
    return page("episode.html", status, episode=record, patient=record.patient, handoffs=handoff_list,
                programs=programs, programs_to_book=[(str(program.id), program.name) for program in programs],
                methods=METHOD_LABELS, moud=MOUD_LABELS, **context)


@bp.route("/episodes/<uuid:episode_id>/discharge", methods=["POST"])
@allow(*REGISTRARS)
def discharge(episode_id: uuid.UUID):
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {"discharged_at": request.form.get("discharged_at", "")}
    try:
        forms.submit(DischargeSchema(), {"discharged_at": forms.timestamp(form["discharged_at"]) or ""},
                     lambda fields: cases.discharge(episode=record, actor=current_user(), **fields))
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, discharge_form=form, discharge_errors=invalid.errors)
    return redirect(url_for("console.episode", episode_id=record.id))


#: The kit the hand-off form's `Naloxone given` records when no kit is in the log yet: the usual
#: ED kit (two 4 mg nasal sprays) given to the patient here, training not recorded (console.md
#: names the checkbox; the naloxone log, not the summary, is what says a kit was given).
USUAL_KIT = {"kind": "given", "recipient": "patient", "product": "nasal_4mg", "doses": 2, "training_given": False}
USUAL_SETTING = {Role.ED_NURSE: "emergency_department", Role.CLINIC_STAFF: "transition_clinic"}


def _record_usual_kit(record: Episode) -> None:
    fields = forms.load(NaloxoneCreateSchema(), {
        **USUAL_KIT, "distributed_at": dt.datetime.now(dt.UTC).isoformat(),
        "setting": USUAL_SETTING.get(current_user().role, "other")}, {"distributed_at": "naloxone_given"})
    naloxone.log(episode=record, fields=fields, actor=current_user())


@bp.route("/episodes/<uuid:episode_id>/handoffs", methods=["POST"])
@allow(*REGISTRARS)
def send_handoff(episode_id: uuid.UUID):
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {"to": request.form.get("to", ""), "method": request.form.get("method", ""),
            "moud": request.form.get("moud", ""), "naloxone_given": request.form.get("naloxone_given") == "yes",
            "note": request.form.get("note", "")}
    to_program = form["to"].removeprefix("program:") if form["to"].startswith("program:") else None
    data = {"episode_id": str(record.id), "method": form["method"],
            "to_level": "community_program" if to_program else form["to"],
            "summary": {"moud": form["moud"],  # naloxone_given: the episode's naloxone log says it
                        **({"note": form["note"].strip()} if form["note"].strip() else {})}}
    if to_program:
        data["to_program_id"] = to_program
    names = {"to_level": "to", "to_program_id": "to", "summary.moud": "moud", "summary.note": "note"}
    def send(fields: dict):
        if form["naloxone_given"] and not record.naloxone_given:
            _record_usual_kit(record)  # first, so that the summary says it (it reads the log)
        return handoffs.send_handoff(episode=record, fields=fields, actor=current_user())

    try:
        forms.submit(HandoffCreateSchema(), data, send, names)
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, handoff_form=form, handoff_errors=invalid.errors)
    return redirect(url_for("console.episode", episode_id=record.id))

