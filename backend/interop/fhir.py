"""An episode as a FHIR R4 Bundle, built and validated with `fhir.resources` (its R4B models,
`fhir.resources.R4B.*`: FHIR 4.3.0, the same as R4 4.0.1 for every resource used here). Each
resource is constructed from the library's model — construction validates it (pydantic) — and
the Bundle is serialised by the library; nothing is a hand-written dict of FHIR JSON.

What the Bundle holds (type `collection`; each entry's `fullUrl` is `urn:uuid:<Bridgeline id>`
and references between entries use those URNs):

| Bridgeline | FHIR | information kind (external exports) |
| --- | --- | --- |
| patient | `Patient` (MRN, name, birth date); telecom, language | always; telecom, language: `contact_information` |
| episode | `EpisodeOfCare` (status, `statusHistory` = level periods, period, care manager) | `treatment_plan` |
| presenting reason | `Condition` (ED presentation: overdose, withdrawal, other) | `diagnosis` |
| handoff | `ServiceRequest` + `Task` (the SDOH Clinical Care referral pattern; `TASK_STATUS`) | `handoff_summary` |
| appointment | `Appointment` | `appointments` |
| the coach's contacts | `Communication` (phone, SMS, attempts) or `Encounter` (in person, video) | `treatment_plan` |
| Part 2 consents | `Consent` (internal export only) | — |
| naloxone kit given | `MedicationDispense` | `medications` |
| medication supply | `MedicationRequest` (bridge) or `MedicationDispense` (dispensed, administered) | `medications` |

Contacts: a call, a text or an attempt is a `Communication` (something said or tried, with
`status` `completed` when the patient was reached, else `not-done` with the outcome as
`statusReason`); an in-person or video visit is an `Encounter` (the patient and the coach met,
class `AMB` / `VR`). Free-text notes, titles and the handoff summary's words are never exported
(codes and times only, as the timeline); reported naloxone uses are not exported.

Every resource and the Bundle carry the DS4P security labels of SUD records (`SECURITY`):
confidentiality `R` (v3-Confidentiality), the `42CFRPart2` policy and the `ETH` sensitivity
(v3-ActCode). An external export adds `NORDSLCD` (no redisclosure without consent) and a
`Composition` whose section carries the §2.32 notice.
"""

from __future__ import annotations

import datetime as dt
import html
import uuid

import sqlalchemy as sa
from fhir.resources.R4B.appointment import Appointment as FhirAppointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.encounter import Encounter as FhirEncounter
from fhir.resources.R4B.episodeofcare import EpisodeOfCare
from fhir.resources.R4B.medicationdispense import MedicationDispense
from fhir.resources.R4B.medicationrequest import MedicationRequest
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task as FhirTask

from backend.auth.models import User
from backend.cases.models import Appointment, Encounter, Episode
from backend.consents import service as consents
from backend.consents.models import Consent
from backend.continuity import medications, naloxone
from backend.database import utcnow
from backend.extensions import db
from backend.handoffs.models import Handoff
from backend.programs.models import Program

V3_CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
#: The DS4P labels every exported resource carries.
SECURITY = (
    {"system": V3_CONFIDENTIALITY, "code": "R", "display": "restricted"},
    {"system": V3_ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"},
    {"system": V3_ACT_CODE, "code": "ETH", "display": "substance abuse information sensitivity"},
)
#: Added to an external export's Bundle: the recipient may not redisclose without consent.
NO_REDISCLOSURE = {"system": V3_ACT_CODE, "code": "NORDSLCD",
                   "display": "no redisclosure without consent directive"}
BASE = "https://bridgeline.example.org/fhir"
MRN_SYSTEM = f"{BASE}/sid/mrn"
BRIDGELINE_CODES = f"{BASE}/CodeSystem"
LEVEL_EXTENSION = f"{BASE}/StructureDefinition/level-of-care"
PART2_POLICY_URI = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"

#: Handoff status → (Task.status, Task.businessStatus code, ServiceRequest.status), as the SDOH
#: Clinical Care guide's referral Task: the receiver's answer is the Task's status; the referral
#: (ServiceRequest) stays `active` while it may still happen.
TASK_STATUS = {
    "sent": ("requested", "sent", "active"),
    "accepted": ("accepted", "accepted", "active"),
    "declined": ("rejected", "declined", "revoked"),
    "cancelled": ("cancelled", "cancelled", "revoked"),
    "completed": ("completed", "arrived", "completed"),
    "no_show": ("failed", "no-show", "revoked"),
}
#: Appointment status → FHIR Appointment.status.
APPOINTMENT_STATUS = {"scheduled": "booked", "attended": "fulfilled", "missed": "noshow", "cancelled": "cancelled"}
#: Contact kinds exported as an Encounter (the rest are Communications), with the Encounter class.
ENCOUNTER_CLASS = {"in_person": "AMB", "video": "VR"}
#: Communication.medium for the other kinds (v3-ParticipationMode).
MEDIUM = {"phone": ("PHONE", "telephone"), "sms": ("SMSWRIT", "SMS message"), "attempt": ("PHONE", "telephone")}
#: Information kinds of an external export → what they bring in (see the table above).
CONTENT_OF_KIND = {"contact_information": "telecom", "treatment_plan": "episode", "diagnosis": "condition",
                   "handoff_summary": "handoffs", "appointments": "appointments", "medications": "medications"}
#: Everything (the internal export).
EVERYTHING = frozenset(CONTENT_OF_KIND.values()) | {"consents", "contacts"}


def _meta(*extra) -> dict:
    return {"security": [*SECURITY, *extra]}


def _instant(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).isoformat() if moment is not None else None


def _urn(record_id) -> str:
    return f"urn:uuid:{record_id}"


def _ref(record_id, display: str | None = None) -> dict:
    return {"reference": _urn(record_id), **({"display": display} if display else {})}


def _code(system_name: str, code: str, display: str | None = None) -> dict:
    return {"coding": [{"system": f"{BRIDGELINE_CODES}/{system_name}", "code": code,
                        **({"display": display} if display else {})}], "text": display or code}


def episode_bundle(episode: Episode, *, contents=EVERYTHING, notice: str | None = None,
                   recipient: str | None = None) -> Bundle:
    """The episode as a Bundle holding `contents` (everything, for the internal export); with
    `notice`, the §2.32 notice of an external export (a Composition, and `NORDSLCD`)."""
    patient = episode.patient
    entries = [_patient(patient, telecom="telecom" in contents)]
    people = _names({episode.coach_id} - {None})
    if "episode" in contents:
        entries.append(_episode_of_care(episode, people))
    if "condition" in contents:
        entries.append(_condition(episode))
    if "handoffs" in contents:
        handoffs = db.session.scalars(sa.select(Handoff).where(Handoff.episode_id == episode.id)
                                      .order_by(Handoff.created_at, Handoff.id)).all()
        programs = dict(db.session.execute(sa.select(Program.id, Program.name).where(
            Program.id.in_({h.to_program_id for h in handoffs} - {None}))).all()) if handoffs else {}
        for handoff in handoffs:
            entries += _referral(handoff, episode, programs.get(handoff.to_program_id))
    if "appointments" in contents:
        for appointment in db.session.scalars(sa.select(Appointment).where(Appointment.episode_id == episode.id)
                                              .order_by(Appointment.starts_at, Appointment.id)):
            entries.append(_appointment(appointment, episode))
    if "contacts" in contents:
        for encounter in db.session.scalars(sa.select(Encounter).where(Encounter.episode_id == episode.id)
                                            .order_by(Encounter.occurred_at, Encounter.id)):
            entries.append(_contact(encounter, episode))
    if "consents" in contents:
        for consent in db.session.scalars(sa.select(Consent).where(Consent.patient_id == patient.id)
                                          .order_by(Consent.signed_at, Consent.id)):
            entries.append(_consent(consent))
    if "medications" in contents:
        entries += [_kit(entry, episode) for entry in sorted(naloxone.of_episode(episode_id=episode.id),
                                                              key=lambda e: (e.occurred_at, str(e.id)))
                    if entry.kind == "given"]
        entries += [_supply(supply, episode) for supply in sorted(medications.of_episode(episode_id=episode.id),
                                                                   key=lambda s: (s.starts_at, str(s.id)))]
    security = []
    if notice is not None:
        entries.insert(0, _notice(episode, notice, recipient))
        security.append(NO_REDISCLOSURE)
    return Bundle(id=str(uuid.uuid4()), meta=_meta(*security), type="collection", timestamp=_instant(utcnow()),
                  entry=[{"fullUrl": _urn(resource.id), "resource": resource} for resource in entries])


def as_json(bundle: Bundle) -> str:
    return bundle.model_dump_json(exclude_none=True)


def _names(user_ids) -> dict:
    if not user_ids:
        return {}
    return dict(db.session.execute(sa.select(User.id, User.display_name).where(User.id.in_(user_ids))).all())


def _patient(patient, *, telecom: bool) -> FhirPatient:
    name = {"use": "official", "family": patient.family_name, "given": [patient.given_name]}
    names = [name] + ([{"use": "usual", "given": [patient.preferred_name], "family": patient.family_name}]
                      if patient.preferred_name else [])
    fields = {}
    if telecom:
        if patient.phone:
            fields["telecom"] = [{"system": "phone", "value": patient.phone, "use": "mobile"}]
        fields["communication"] = [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": patient.language}]},
                                    "preferred": True}]
    return FhirPatient(
        id=str(patient.id), meta=_meta(),
        identifier=[{"use": "usual", "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                          "code": "MR"}]},
                     "system": MRN_SYSTEM, "value": patient.mrn}] if patient.mrn else None,
        name=names, birthDate=patient.birth_date.isoformat(), **fields)


def _episode_of_care(episode: Episode, people: dict) -> EpisodeOfCare:
    history = [{"status": "active" if period.ended_at is None and episode.is_open else "finished",
                "period": {"start": _instant(period.started_at), **({"end": _instant(period.ended_at)}
                                                                    if period.ended_at else {})},
                "extension": [{"url": LEVEL_EXTENSION, "valueCode": str(period.level)}]}
               for period in episode.level_periods]
    manager = {"identifier": {"system": f"{BASE}/sid/user", "value": str(episode.coach_id)},
               "display": people.get(episode.coach_id, "Recovery coach")} if episode.coach_id else None
    return EpisodeOfCare(
        id=str(episode.id), meta=_meta(), status="active" if episode.is_open else "finished",
        statusHistory=history, type=[_code("level-of-care", str(episode.level))],
        patient=_ref(episode.patient_id),
        period={"start": _instant(episode.arrived_at), **({"end": _instant(episode.closed_at)}
                                                          if episode.closed_at else {})},
        careManager=manager)


def _condition(episode: Episode) -> Condition:
    return Condition(
        id=str(uuid.uuid5(episode.id, "presenting-reason")), meta=_meta(),
        category=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                               "code": "encounter-diagnosis"}]}],
        code=_code("presenting-reason", episode.presenting_reason), subject=_ref(episode.patient_id),
        onsetDateTime=_instant(episode.arrived_at))


def _referral(handoff: Handoff, episode: Episode, program_name: str | None) -> list:
    task_status, business, request_status = TASK_STATUS[str(handoff.status)]
    receiver = program_name or f"Bridgeline {str(handoff.to_level).replace('_', ' ')}"
    request_id = uuid.uuid5(handoff.id, "service-request")
    request = ServiceRequest(
        id=str(request_id), meta=_meta(), status=request_status, intent="order",
        code=_code("level-of-care", str(handoff.to_level)), subject=_ref(episode.patient_id),
        authoredOn=_instant(handoff.created_at), performer=[{"display": receiver}],
        occurrencePeriod={"end": _instant(handoff.arrive_by)})
    last = max((event.at for event in handoff.events), default=handoff.created_at)
    task = FhirTask(
        id=str(handoff.id), meta=_meta(), status=task_status, intent="order",
        businessStatus=_code("handoff-status", business, str(handoff.status)),
        focus=_ref(request_id), **{"for": _ref(episode.patient_id)}, authoredOn=_instant(handoff.created_at),
        lastModified=_instant(last), owner={"display": receiver},
        restriction={"period": {"end": _instant(handoff.accept_by)}},
        executionPeriod={"start": _instant(handoff.created_at),
                         **({"end": _instant(handoff.arrived_at)} if handoff.arrived_at else {})})
    return [request, task]


def _appointment(appointment: Appointment, episode: Episode) -> FhirAppointment:
    return FhirAppointment(
        id=str(appointment.id), meta=_meta(), status=APPOINTMENT_STATUS[str(appointment.status)],
        appointmentType=_code("appointment-kind", appointment.kind), start=_instant(appointment.starts_at),
        participant=[{"actor": _ref(episode.patient_id), "status": "accepted"}])


def _contact(encounter: Encounter, episode: Episode):
    reached = encounter.outcome == Encounter.REACHED
    if encounter.kind in ENCOUNTER_CLASS:
        start = encounter.occurred_at
        end = start + dt.timedelta(minutes=encounter.duration_minutes) if encounter.duration_minutes else None
        return FhirEncounter(
            id=str(encounter.id), meta=_meta(), status="finished" if reached else "cancelled",
            **{"class": {"system": V3_ACT_CODE, "code": ENCOUNTER_CLASS[encounter.kind]}},
            type=[_code("contact-kind", encounter.kind)], subject=_ref(episode.patient_id),
            episodeOfCare=[_ref(episode.id)],
            period={"start": _instant(start), **({"end": _instant(end)} if end else {})})
    code, display = MEDIUM.get(encounter.kind, ("PHONE", "telephone"))
    return Communication(
        id=str(encounter.id), meta=_meta(), status="completed" if reached else "not-done",
        statusReason=None if reached else _code("contact-outcome", encounter.outcome),
        category=[_code("contact-kind", encounter.kind)],
        medium=[{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode",
                             "code": code, "display": display}]}],
        subject=_ref(episode.patient_id), encounter=None, sent=_instant(encounter.occurred_at),
        recipient=[_ref(episode.patient_id)])


def _consent(consent: Consent) -> FhirConsent:
    active = consents.is_active(consent)
    period = {"start": _instant(consent.signed_at)}
    end = consent.revocation.revoked_at if consent.revocation is not None else consent.expires_at
    if end is not None:
        period["end"] = _instant(end)
    return FhirConsent(
        id=str(consent.id), meta=_meta(), status="active" if active else "inactive",
        scope={"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]},
        category=[{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]},
                  {"coding": [{"system": V3_ACT_CODE, "code": "IDSCL", "display": "information disclosure"}]}],
        patient=_ref(consent.patient_id), dateTime=_instant(consent.signed_at),
        organization=[{"display": consent.disclosing_program}],
        policy=[{"uri": PART2_POLICY_URI}],
        policyRule={"coding": [{"system": V3_ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"}]},
        provision={"type": "permit", "period": period,
                   "actor": [{"role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                                   "code": "IRCP", "display": "information recipient"}]},
                              "reference": {"display": consent.recipient_name or "Recipient"}}],
                   "purpose": [{"system": f"{BRIDGELINE_CODES}/consent-purpose", "code": "stated",
                                "display": consent.purpose[:200]}],
                   "class": [{"system": f"{BRIDGELINE_CODES}/information-kind", "code": kind}
                             for kind in consent.information]})


def _kit(entry, episode: Episode) -> MedicationDispense:
    return MedicationDispense(
        id=str(entry.id), meta=_meta(), status="completed",
        medicationCodeableConcept=_code("naloxone-product", entry.product or "other", "naloxone"),
        subject=_ref(episode.patient_id), whenHandedOver=_instant(entry.occurred_at),
        quantity={"value": entry.doses} if entry.doses else None,
        type=_code("naloxone-recipient", entry.recipient or "patient"))


def _supply(supply, episode: Episode):
    medication = _code("moud", supply.medication, supply.medication)
    if supply.kind == "bridge_prescription":
        status = "active" if supply.ends_at > utcnow() else "completed"
        return MedicationRequest(
            id=str(supply.id), meta=_meta(), status=status, intent="order", medicationCodeableConcept=medication,
            subject=_ref(episode.patient_id), authoredOn=_instant(supply.starts_at),
            dispenseRequest={"validityPeriod": {"start": _instant(supply.starts_at), "end": _instant(supply.ends_at)},
                             "expectedSupplyDuration": {"value": supply.days_supplied, "unit": "days",
                                                        "system": "http://unitsofmeasure.org", "code": "d"}})
    return MedicationDispense(
        id=str(supply.id), meta=_meta(), status="completed", medicationCodeableConcept=medication,
        subject=_ref(episode.patient_id), whenHandedOver=_instant(supply.starts_at),
        type=_code("supply-kind", supply.kind),
        daysSupply={"value": supply.days_supplied, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"})


def _notice(episode: Episode, notice: str, recipient: str | None) -> Composition:
    div = f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(notice)}</p></div>'
    return Composition(
        id=str(uuid.uuid4()), meta=_meta(NO_REDISCLOSURE), status="final",
        type={"coding": [{"system": V3_ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"}],
              "text": "42 CFR Part 2 disclosure notice"},
        subject=_ref(episode.patient_id), date=_instant(utcnow()),
        author=[{"display": consents.DISCLOSING_PROGRAM}],
        title=f"Disclosure under 42 CFR Part 2{f' to {recipient}' if recipient else ''}",
        confidentiality="R",
        section=[{"title": "Notice (42 CFR 2.32)", "text": {"status": "generated", "div": div}}])
