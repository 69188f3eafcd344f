"""The console's records pages: a patient's 42 CFR Part 2 consents (record, revoke), the
printable accounting of disclosures, the inbox of replies, the texts that need a person, and the
outcomes report with its charts and CSV (console.md "Who does what", clinic staff).

Each view checks the record's scope with the API's `Scope` and calls the same service function
as the API's view (`backend.consents.api`, `backend.outreach.api`, `backend.reports.api`), so the
rules, the audit events and the refusals are the API's. Filters here carry no patient data
(dates, statuses, a coach's id), so they ride in the query string of GET forms.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from flask import Response, redirect, request, url_for

from backend.auth import service as auth_service
from backend.auth.access import allow, current_user
from backend.auth.models import CASE_WORKERS, Role, User
from backend.cases import service as cases
from backend.cases.models import Patient
from backend.cases.schemas import PRESENTING_REASONS
from backend.cases.scopes import PATIENTS
from backend.consents import service as consents
from backend.consents.models import INFORMATION_KINDS, Consent
from backend.consents.schemas import (
    ConsentCreateSchema,
    DisclosureQuerySchema,
    RevokeSchema,
)
from backend.consents.scopes import CONSENTS
from backend.console import bp, forms
from backend.console.views import REASON_LABELS, page, refused
from backend.database import takes_write_lock
from backend.errors import Problem
from backend.extensions import db
from backend.outreach import service as outreach
from backend.outreach.models import REVIEW_STATUSES
from backend.outreach.scopes import INBOX
from backend.programs import service as programs
from backend.reports import service as reports
from backend.reports.schemas import OutcomesQuerySchema

#: One page of a list (the API's largest page).
PAGE = 200

INFORMATION_LABELS = {"handoff_summary": "Handoff summary", "medications": "Medications",
                      "appointments": "Appointments", "diagnosis": "Diagnosis", "treatment_plan": "Treatment plan",
                      "contact_information": "Contact information"}
#: The handoff summary's fields, as the accounting names them.
CONTENT_LABELS = {"moud": "Medication for OUD", "last_dose_at": "Last dose", "naloxone_given": "Naloxone given",
                  "risks": "Risks", "plan": "Plan", "goals": "Goals", "note": "Note"}
SIGNATURE_LABELS = {"written": "Written", "electronic": "Electronic"}
#: The marshmallow messages people meet most, in plainer words.
PLAIN = {"Missing data for required field.": "Fill this in.", "Shorter than minimum length 1.": "Choose at least one.",
         "Field may not be null.": "Fill this in."}


def _plain(errors: dict[str, list[str]]) -> dict[str, list[str]]:
    return {field: [PLAIN.get(message, message) for message in messages] for field, messages in errors.items()}


def _service_errors(problem: Problem, names: dict[str, str]) -> dict[str, list[str]]:
    """A service's refusal by the form's fields, in the words it says to people (its field
    messages name the API's fields)."""
    if not problem.errors:
        return {"_form": [problem.description]}
    return {names.get(field, field): [problem.description] for field in problem.errors}


def _patients(ids) -> dict[uuid.UUID, Patient]:
    """The patients of a page of records, in one query (their scope was the list's)."""
    ids = {i for i in ids if i is not None}
    return {p.id: p for p in db.session.scalars(sa.select(Patient).where(Patient.id.in_(ids)))} if ids else {}


def _users(ids) -> dict[uuid.UUID, User]:
    ids = {i for i in ids if i is not None}
    return {u.id: u for u in db.session.scalars(sa.select(User).where(User.id.in_(ids)))} if ids else {}


# --- consents -------------------------------------------------------------------------------

#: The consent form's fields whose schema name differs.
CONSENT_NAMES = {"recipient_program_id": "recipient", "expires_at": "expires_on",
                 "expires_on_end_of_treatment": "expiry"}


@bp.route("/patients/<uuid:patient_id>/consents")
@allow(*CASE_WORKERS)
def consents_page(patient_id: uuid.UUID):
    return _consents_page(PATIENTS.load_or_404(patient_id))


def _consents_page(patient: Patient, status: int = 200, **context):
    """The patient's consents, newest first (revoked and expired ones too), the form to record
    one and a revoke form on each active one."""
    record = cases.read_patient(patient=patient)
    items, next_cursor = consents.list_consents(patient=record, cursor=request.args.get("cursor") or None,
                                                limit=PAGE)
    directory, _ = programs.list_programs(service=None, accepting=None, cursor=None, limit=PAGE)
    context.setdefault("form", {"recipient": "", "information": [], "signed_at": forms.now_input(),
                                "signature_method": "written", "expiry": "date"})
    return page("records_consents.html", status, patient=record, consents=items, next_cursor=next_cursor,
                active={c.id: consents.is_active(c) for c in items}, programs=directory,
                information=INFORMATION_LABELS, signatures=SIGNATURE_LABELS, now_input=forms.now_input(),
                **context)


def _consent_form() -> dict:
    form = {name: request.form.get(name, "").strip() for name in
            ("recipient", "recipient_name", "purpose", "signed_at", "signature_method", "expiry", "expires_on")}
    form["information"] = [kind for kind in request.form.getlist("information") if kind in INFORMATION_KINDS]
    return form


def _expiry_instant(day: str) -> str | None:
    """A consent's expiry date as the last minute of that day in the hospital's zone."""
    if not day:
        return None
    try:
        return dt.datetime.combine(dt.date.fromisoformat(day), dt.time(23, 59), forms.zone()).isoformat()
    except ValueError:
        return day  # for the schema to refuse in its words


@bp.route("/patients/<uuid:patient_id>/consents", methods=["POST"])
@allow(*CASE_WORKERS)
def record_consent(patient_id: uuid.UUID):
    patient = PATIENTS.load_or_404(patient_id)
    form = _consent_form()
    data = {"purpose": form["purpose"], "information": form["information"],
            "signed_at": forms.timestamp(form["signed_at"]), "signature_method": form["signature_method"]}
    if form["recipient"].startswith("program:"):
        data["recipient_program_id"] = form["recipient"].removeprefix("program:")
    elif form["recipient"] == "named":
        data["recipient_name"] = form["recipient_name"] or None
    if form["expiry"] == "end_of_treatment":
        data["expires_on_end_of_treatment"] = True
    elif form["expiry"] == "date":
        data["expires_at"] = _expiry_instant(form["expires_on"])
    data = {name: value for name, value in data.items() if value not in (None, "")}
    try:
        fields = forms.load(ConsentCreateSchema(), data, CONSENT_NAMES)
        consents.record_consent(patient=patient, fields=fields, actor=current_user())
    except forms.FormErrors as invalid:
        return _consents_page(patient, 422, form=form, errors=_plain(invalid.errors))
    except Problem as problem:
        refused(problem)
        return _consents_page(patient, problem.code, form=form, errors=_service_errors(problem, CONSENT_NAMES))
    return redirect(url_for("console.consents_page", patient_id=patient.id, recorded=1))


@bp.route("/consents/<uuid:consent_id>/revoke", methods=["POST"])
@allow(*CASE_WORKERS)
def revoke_consent(consent_id: uuid.UUID):
    consent = CONSENTS.load_or_404(consent_id, lock=True)
    form = {"method": request.form.get("method", ""), "revoked_at": request.form.get("revoked_at", "")}
    data = {"method": form["method"], "revoked_at": forms.timestamp(form["revoked_at"])}
    try:
        fields = forms.load(RevokeSchema(), {k: v for k, v in data.items() if v})
        consents.revoke(consent=consent, method=fields["method"], revoked_at=fields.get("revoked_at"),
                        actor=current_user())
    except (forms.FormErrors, Problem) as failed:
        if isinstance(failed, Problem):
            refused(failed)
            errors, status = _service_errors(failed, {}), failed.code
        else:
            errors, status = _plain(failed.errors), 422
        patient = db.session.get(Patient, consent.patient_id)
        return _consents_page(patient, status, revoking=consent.id, revoke_form=form, revoke_errors=errors)
    return redirect(url_for("console.consents_page", patient_id=consent.patient_id, revoked=1))


# --- the accounting of disclosures ----------------------------------------------------------

@bp.route("/patients/<uuid:patient_id>/disclosures")
@allow(Role.CLINIC_STAFF)
def accounting(patient_id: uuid.UUID):
    """The accounting of disclosures, printable: every disclosure of the last three years with
    what went, to whom, when, under which consent and by whom, and the §2.32 notice with it."""
    patient = cases.read_patient(patient=PATIENTS.load_or_404(patient_id))
    typed = request.args.get("since", "").strip()  # a date (no PHI): a longer period asked for
    since, since_errors, status = None, None, 200
    if typed:
        try:  # the API's own query field (GET …/disclosures?since=), from the start of that day
            since = forms.load(DisclosureQuerySchema(only=("since",)), {"since": forms.timestamp(typed)})["since"]
        except forms.FormErrors as invalid:
            since_errors, status = invalid.errors, invalid.status
    items, next_cursor = consents.accounting(patient=patient, since=since, cursor=request.args.get("cursor") or None,
                                             limit=PAGE)
    consent_ids = {d.consent_id for d in items}
    signed = {row.id: row.signed_at for row in db.session.execute(
        sa.select(Consent.id, Consent.signed_at).where(Consent.id.in_(consent_ids)))} if consent_ids else {}
    notices = list(dict.fromkeys(d.notice for d in items)) or [consents.NOTICE_2_32]
    return page("records_accounting.html", status, patient=patient, disclosures=items, next_cursor=next_cursor,
                since=since, since_typed=typed, since_errors=since_errors,
                signed=signed, users=_users(d.disclosed_by_id for d in items), notices=notices,
                information=INFORMATION_LABELS, content_labels=CONTENT_LABELS, printed_at=dt.datetime.now(dt.UTC))


# --- the inbox and the texts that need a person ---------------------------------------------

@bp.route("/inbox")
@allow(*CASE_WORKERS)
def inbox():
    """Replies the user should read (clinic staff: every reply, from unknown numbers too)."""
    everything = request.args.get("show") == "all"
    items, next_cursor = outreach.inbox(user=current_user(), unread=None if everything else True,
                                        cursor=request.args.get("cursor") or None, limit=PAGE)
    return page("records_inbox.html", messages=items, next_cursor=next_cursor, everything=everything,
                patients=_patients(m.patient_id for m in items))


@bp.route("/inbox/<uuid:message_id>/read", methods=["POST"])
@allow(*CASE_WORKERS)
def mark_read(message_id: uuid.UUID):
    outreach.mark_read(message=INBOX.load_or_404(message_id), user=current_user())
    return redirect(url_for("console.inbox", show="all" if request.form.get("show") == "all" else None))


REVIEW_LABELS = {
    "unknown": "Outcome not known: it may or may not have reached the phone. It is never retried on its own; "
               "ask the patient before sending it again.",
    "failed": "The carrier could not deliver it.",
    "blocked": "A rule stopped it before it went (not opted in, no phone that takes texts, too late to help).",
}


@bp.route("/texts/review")
@allow(Role.CLINIC_STAFF)
def texts_review():
    """Outbound texts that need a person: `unknown`, `failed`, `blocked` (the API's review list)."""
    status = request.args.get("status") or None
    if status not in (None, *REVIEW_STATUSES):
        status = None
    items, next_cursor = outreach.needing_review(status=status, cursor=request.args.get("cursor") or None,
                                                 limit=PAGE)
    return page("records_review.html", messages=items, next_cursor=next_cursor, chosen=status or "",
                statuses=REVIEW_LABELS, patients=_patients(m.patient_id for m in items))


# --- the outcomes report --------------------------------------------------------------------

MEASURE_LABELS = {
    "contacted_24h": "Contacted within 24 h of discharge",
    "contacted_72h": "Contacted within 72 h of discharge",
    "clinic_visit_72h": "First clinic visit within 72 h",
    "clinic_visit_7d": "First clinic visit within 7 days",
    "median_hours_to_first_visit": "Discharge to first clinic visit",
    "engaged_2_visits": "Engaged: 2 or more clinic visits",
    "treatment_engaged_30d": "In treatment at 30 days",
    "follow_up_7d": "Follow-up within 7 days",
    "follow_up_30d": "Follow-up within 30 days",
    "retained_60d": "Retained at 60 days",
    "warm_handoffs": "Warm handoffs",
    "handoffs_accepted_on_time": "Handoffs accepted on time",
    "community_arrival_confirmed": "Arrival at a community program confirmed",
    "texts_delivered": "Texts delivered",
    "opted_out": "Opted out of texts (lower is better)",
    "ed_revisit_30d": "Back in the ED within 30 days (lower is better)",
    "overdose_revisit_90d": "Repeat overdose visit within 90 days (lower is better)",
}
POPULATION_LABELS = {"episodes": "Patients discharged", "handoffs": "Handoffs", "texts": "Texts"}
#: The report's filter fields: the API's query names.
REPORT_FIELDS = ("from", "to", "coach_id", "presenting_reason")


def _report_query() -> tuple[dict, dict]:
    """The filter as typed (defaults: the last 90 days) and the query the API's schema loads."""
    today = dt.datetime.now(forms.zone()).date()
    form = {name: request.args.get(name, "").strip() for name in REPORT_FIELDS}
    form["from"] = form["from"] or (today - dt.timedelta(days=90)).isoformat()
    form["to"] = form["to"] or today.isoformat()
    return form, {name: value for name, value in form.items() if value}


def _report(form: dict, query: dict) -> tuple[dict | None, dict | None]:
    try:
        fields = forms.load(OutcomesQuerySchema(), query)
    except forms.FormErrors as invalid:
        return None, _plain(invalid.errors)
    return reports.outcomes(start=fields["from_"], end=fields["to"], coach_id=fields.get("coach_id"),
                            presenting_reason=fields.get("presenting_reason")), None


@bp.route("/reports/outcomes")
@allow(Role.CLINIC_STAFF)
@takes_write_lock  # the report brings its stored facts up to date first
def outcomes():
    form, query = _report_query()
    report, errors = _report(form, query)
    coaches, _ = auth_service.list_users(role=Role.COACH, active=None, cursor=None, limit=PAGE)
    groups = {}
    for key, figures in (report["measures"] if report else {}).items():
        groups.setdefault(figures["population"], []).append((key, MEASURE_LABELS.get(key, key), figures))
    return page("outcomes.html", 422 if errors else 200, form=form, query=query, report=report, errors=errors,
                groups=groups, populations=POPULATION_LABELS, coaches=coaches,
                reasons=[(r, REASON_LABELS.get(r, r)) for r in PRESENTING_REASONS])


@bp.route("/reports/outcomes.csv")
@allow(Role.CLINIC_STAFF)
@takes_write_lock
def outcomes_csv():
    """The same CSV as the API's `Accept: text/csv` answer."""
    form, query = _report_query()
    report, errors = _report(form, query)
    if errors:
        raise Problem(422, "The report's period or filters are not valid: go back to Outcomes and correct them.")
    name = f"outcomes_{report['from'].isoformat()}_{report['to'].isoformat()}.csv"
    return Response(reports.as_csv(report), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
