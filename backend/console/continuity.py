"""The episode page's continuity of treatment: a naloxone kit given and a medication supply
recorded, through the API's schemas and services (POST /api/v1/episodes/{id}/naloxone and
…/medications), for the roles the API lets write them."""

from __future__ import annotations

import datetime as dt
import uuid

from flask import flash, redirect, request, url_for

from backend.auth.access import allow, current_user
from backend.auth.models import CLINICAL_ROLES, Role
from backend.cases.models import Episode
from backend.cases.scopes import EPISODES
from backend.console import bp, forms
from backend.console.views import _episode_page
from backend.continuity import medications, naloxone
from backend.continuity.models import (
    MEDICATIONS,
    PRODUCTS,
    RECIPIENTS,
    SETTINGS,
    SUPPLY_KINDS,
    SUPPLY_SOURCES,
)
from backend.continuity.schemas import (
    MedicationSupplyCreateSchema,
    NaloxoneCreateSchema,
)

WORDS = {
    "patient": "The patient", "support_person": "A support person",
    "nasal_4mg": "Nasal spray 4 mg", "nasal_8mg": "Nasal spray 8 mg", "nasal_other": "Nasal, other",
    "intramuscular": "Intramuscular", "other": "Other",
    "emergency_department": "Emergency department", "inpatient": "Inpatient", "transition_clinic": "Transition clinic",
    "community": "Community", "community_program": "A community program",
    "buprenorphine": "Buprenorphine", "methadone": "Methadone", "naltrexone": "Naltrexone",
    "bridge_prescription": "Bridge prescription", "dispensed": "Dispensed", "administered": "Administered",
}
#: Where each role usually hands a kit or a supply out (the form's first choice).
HOME_SETTING = {Role.ED_NURSE: "emergency_department", Role.CLINIC_STAFF: "transition_clinic",
                Role.COACH: "community"}
HOME_SOURCE = {Role.ED_NURSE: "emergency_department", Role.CLINIC_STAFF: "transition_clinic",
               Role.COACH: "community_program"}
#: The forms' fields, by the form's names (ids unique on the episode page).
KIT_NAMES = {"distributed_at": "kit_given_at", "recipient": "kit_recipient", "product": "kit_product",
             "doses": "kit_doses", "training_given": "kit_training", "setting": "kit_setting"}
SUPPLY_NAMES = {"medication": "supply_medication", "form": "supply_form", "kind": "supply_kind",
                "source": "supply_source", "started_on": "supply_started_on", "days_supplied": "supply_days"}


def _choices(codes) -> list[tuple[str, str]]:
    return [(code, WORDS.get(code, code)) for code in codes]


def parts(record: Episode) -> dict:
    """What the episode page needs for the two forms (empty forms for the user's role)."""
    role = current_user().role
    return {"kit_choices": {"recipient": _choices(RECIPIENTS), "product": _choices(PRODUCTS),
                            "setting": _choices(SETTINGS)},
            "supply_choices": {"medication": _choices(MEDICATIONS), "kind": _choices(SUPPLY_KINDS),
                               "source": _choices(SUPPLY_SOURCES)},
            "kit_form": {"kit_given_at": forms.now_input(), "kit_recipient": "patient", "kit_product": "nasal_4mg",
                         "kit_doses": "2", "kit_training": True, "kit_setting": HOME_SETTING.get(role, "other")},
            "supply_form": {"supply_medication": "buprenorphine", "supply_form": "",
                            "supply_kind": "bridge_prescription", "supply_source": HOME_SOURCE.get(role, "other"),
                            "supply_started_on": dt.datetime.now(forms.zone()).date().isoformat(), "supply_days": "7"},
            "may_record_continuity": role in CLINICAL_ROLES and record.is_open}


@bp.route("/episodes/<uuid:episode_id>/naloxone", methods=["POST"])
@allow(*CLINICAL_ROLES)
def record_kit(episode_id: uuid.UUID):
    """A naloxone kit given, as POST /api/v1/episodes/{id}/naloxone."""
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {name: request.form.get(name, "") for name in KIT_NAMES.values()}
    form["kit_training"] = request.form.get("kit_training") == "yes"
    data = {"kind": "given", "distributed_at": forms.timestamp(form["kit_given_at"]) or "",
            "recipient": form["kit_recipient"], "product": form["kit_product"], "setting": form["kit_setting"],
            "training_given": form["kit_training"], "doses": _number(form["kit_doses"])}
    try:
        forms.submit(NaloxoneCreateSchema(), data,
                     lambda fields: naloxone.log(episode=record, fields=fields, actor=current_user()), KIT_NAMES)
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, kit_form=form, kit_errors=invalid.errors)
    flash("Naloxone kit recorded.")
    return redirect(url_for("console.episode", episode_id=record.id) + "#continuity-heading")


@bp.route("/episodes/<uuid:episode_id>/medications", methods=["POST"])
@allow(*CLINICAL_ROLES)
def record_supply(episode_id: uuid.UUID):
    """A medication supply, as POST /api/v1/episodes/{id}/medications."""
    record = EPISODES.load_or_404(episode_id, lock=True)
    form = {name: request.form.get(name, "") for name in SUPPLY_NAMES.values()}
    data = {"medication": form["supply_medication"], "kind": form["supply_kind"], "source": form["supply_source"],
            "started_on": form["supply_started_on"].strip(), "days_supplied": _number(form["supply_days"]),
            **({"form": form["supply_form"].strip()} if form["supply_form"].strip() else {})}
    try:
        forms.submit(MedicationSupplyCreateSchema(), data,
                     lambda fields: medications.log_supply(episode=record, fields=fields, actor=current_user()),
                     SUPPLY_NAMES)
    except forms.FormErrors as invalid:
        return _episode_page(record, invalid.status, supply_form=form, supply_errors=invalid.errors)
    flash("Medication supply recorded.")
    return redirect(url_for("console.episode", episode_id=record.id) + "#continuity-heading")


def _number(typed: str) -> int | str:
    """A whole number typed in a form, or the text as typed for the schema to refuse."""
    typed = typed.strip()
    return int(typed) if typed.isdigit() else typed
