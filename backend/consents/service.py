"""42 CFR Part 2 consent, and the disclosures made under it (privacy.md "42 CFR Part 2 consent").

A disclosure to a recipient outside the hospital's SUD program happens only under an active
consent: signed, not yet expired (by date, or by the end of the treatment episode), not
revoked, naming that recipient and covering the kinds of information sent. Otherwise 409
`consent-required`. Each disclosure is recorded with exactly what was sent, the consent it
relied on and the §2.32 notice; the accounting of disclosures lists them per patient.
Consents are never edited: revocation is a record of its own and blocks every later disclosure.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from backend import idempotency
from backend.audit import service as audit
from backend.auth.models import User
from backend.cases import service as cases
from backend.cases.models import Episode, Patient
from backend.consents.models import Consent, ConsentRevocation, Disclosure
from backend.database import utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.pagination import keyset_page
from backend.programs import service as programs
from backend.programs.models import Program

DISCLOSING_PROGRAM = "Hospital SUD program (Bridgeline)"

#: 42 CFR 2.32(a)(1), the notice that accompanies every disclosure made with consent.
NOTICE_2_32 = (
    "This record which has been disclosed to you is protected by Federal confidentiality rules "
    "(42 CFR part 2). These rules prohibit you from using or disclosing this record, or testimony "
    "that describes the information contained in this record, in any civil, criminal, "
    "administrative, or legislative proceedings by any Federal, State, or local authority, against "
    "the patient, unless authorized by the consent of the patient, except as provided at 42 CFR "
    "2.12(c)(5) or as authorized by a court in accordance with 42 CFR 2.64 or 2.65. In addition, "
    "the Federal rules prohibit you from making any other use or disclosure of this record unless "
    "at least one of the following applies: (A) Further use or disclosure is expressly permitted by "
    "the written consent of the individual whose information is being disclosed in this record or as "
    "otherwise permitted by 42 CFR part 2. (B) You are a covered entity or business associate and "
    "have received the record for treatment, payment, or health care operations, or (C) You have "
    "received the record from an individual or entity that is a covered entity or business "
    "associate as permitted by 42 CFR part 2. A general authorization for the release of medical or "
    "other information is NOT sufficient to meet the required elements of written consent to "
    "further use or redisclose the record (see 42 CFR 2.31). The Federal rules restrict any use of "
    "the information to investigate or prosecute with regard to a crime any patient with a "
    "substance use disorder, except as provided at 42 CFR 2.12(e)(1) and 2.65."
)


def record_consent_once(*, patient: Patient, fields: dict, actor: User) -> tuple[Consent, bool]:
    """`record_consent`, unless a retry with the client's `id` finds the consent already recorded
    (revoked or expired since, maybe). Returns (consent, created)."""
    existing = idempotency.created_before(Consent, fields.get("id"), request={"patient_id": patient.id, **fields})
    if existing is not None:
        audit.record("consent.read", resource_type="consent", resource_id=existing.id, patient_ids=[patient.id])
        return existing, False
    return record_consent(patient=patient, fields=fields, actor=actor), True


def record_consent(*, patient: Patient, fields: dict, actor: User) -> Consent:
    program_id, name = fields.get("recipient_program_id"), fields.get("recipient_name")
    if (program_id is None) == (name is None):
        raise Problem(422, "Name the recipient: a program from the directory or a person or organisation.",
                      errors={"recipient_program_id": ["Give exactly one of recipient_program_id and "
                                                       "recipient_name."]})
    program = programs.named_program(program_id, field="recipient_program_id") if program_id is not None else None
    if program is not None:
        fields = {**fields, "recipient_name": program.name}  # as the patient read it when signing
    if fields.get("expires_at") is None and not fields.get("expires_on_end_of_treatment"):
        raise Problem(422, "A consent needs an expiry: a date, or the end of treatment.",
                      errors={"expires_at": ["Give expires_at or expires_on_end_of_treatment: true."]})
    if fields.get("expires_at") is not None and fields["expires_at"] <= utcnow():
        raise Problem(422, "This consent has already expired.", errors={"expires_at": ["In the past."]})
    if fields.get("expires_at") is not None and fields["expires_at"] <= fields["signed_at"]:
        raise Problem(422, "The consent would expire before it was signed.",
                      errors={"expires_at": ["Not after signed_at."]})
    episode_id = cases.open_episode_id(patient.id)
    if fields.get("expires_on_end_of_treatment") and episode_id is None:
        raise Problem(422, "No treatment episode is open, so 'end of treatment' has no meaning.",
                      errors={"expires_on_end_of_treatment": ["No open episode."]})
    consent = Consent(patient_id=patient.id, disclosing_program=DISCLOSING_PROGRAM, episode_id=episode_id,
                      recorded_by_id=actor.id, **fields)
    db.session.add(consent)
    db.session.flush()
    audit.record("consent.create", resource_type="consent", resource_id=consent.id, patient_ids=[patient.id])
    return consent


def revoke(*, consent: Consent, method: str, revoked_at: dt.datetime | None, actor: User) -> Consent:
    if consent.revocation is not None:
        raise Problem(409, "This consent was already revoked.")
    now = utcnow()
    revoked_at = min(revoked_at or now, now)  # a revocation takes effect at once, never later
    if revoked_at < consent.signed_at:
        raise Problem(422, "A consent cannot be revoked before it was signed.",
                      errors={"revoked_at": ["Before the consent's signed_at."]})
    db.session.add(ConsentRevocation(consent_id=consent.id, method=method, revoked_at=revoked_at,
                                     recorded_by_id=actor.id))
    db.session.flush()
    db.session.expire(consent, ["revocation"])
    audit.record("consent.revoke", resource_type="consent", resource_id=consent.id, patient_ids=[consent.patient_id])
    return consent


def is_active(consent: Consent, now: dt.datetime | None = None) -> bool:
    now = now or utcnow()
    if consent.signed_at > now:
        return False
    if consent.revocation is not None:  # recorded means in force: it blocks every later disclosure
        return False
    if consent.expires_at is not None and consent.expires_at <= now:
        return False
    if consent.expires_on_end_of_treatment and consent.episode_id is not None:
        if not cases.is_open(consent.episode_id):
            return False
    return True


def list_consents(*, patient: Patient, cursor: str | None, limit: int):
    stmt = sa.select(Consent).where(Consent.patient_id == patient.id)
    consents, next_cursor = keyset_page(stmt, keys=[Consent.signed_at, Consent.id], cursor=cursor, limit=limit,
                                        descending=True, session=db.session)
    audit.record("consent.list", patient_ids=[patient.id], details={"count": len(consents)})
    return consents, next_cursor


def covering_consent(*, patient_id, program: Program, information: list[str]) -> Consent | None:
    """The newest active consent covering the disclosure. Its row is share-locked until the
    disclosure commits, so a revocation (which locks it for update) waits, or wins first and
    is seen here: a consent cannot be revoked in the middle of a disclosure relying on it."""
    candidates = db.session.scalars(sa.select(Consent).where(
        Consent.patient_id == patient_id, Consent.recipient_program_id == program.id)
        .order_by(Consent.signed_at.desc(), Consent.id).with_for_update(read=True)
        .execution_options(populate_existing=True)).all()
    for consent in candidates:
        db.session.expire(consent, ["revocation"])
    return next((c for c in candidates if is_active(c) and set(information) <= set(c.information)), None)


def require_consent(*, episode: Episode, program: Program, information=("handoff_summary",)) -> Consent:
    """The Part 2 gate of every disclosure to an outside program — a handoff (its summary) and a
    FHIR export (the kinds requested) alike: the consent it may rely on, or 409 consent-required."""
    information = list(information)
    consent = covering_consent(patient_id=episode.patient_id, program=program, information=information)
    if consent is None:
        audit.record("disclosure.refused", resource_type="program", resource_id=program.id,
                     patient_ids=[episode.patient_id], details={"reason": "no covering consent",
                                                                "information": information})
        covering = "the handoff summary" if information == ["handoff_summary"] else \
            ", ".join(kind.replace("_", " ") for kind in information)
        raise Problem(409, f"{program.name} is outside the program: a 42 CFR Part 2 consent naming it and "
                           f"covering {covering} is required first.", type="consent-required",
                      recipient_program_id=str(program.id))
    return consent


def record_disclosure(*, consent: Consent, episode: Episode, program: Program, content: dict,
                      handoff_id, actor: User, information=("handoff_summary",), disclosure_id=None) -> Disclosure:
    disclosure = Disclosure(patient_id=episode.patient_id, consent_id=consent.id, recipient_program_id=program.id,
                            recipient_name=program.name, information=list(information), content=content,
                            notice=NOTICE_2_32, handoff_id=handoff_id, disclosed_by_id=actor.id,
                            **({"id": disclosure_id} if disclosure_id is not None else {}))
    db.session.add(disclosure)
    db.session.flush()
    audit.record("disclosure.create", resource_type="disclosure", resource_id=disclosure.id,
                 patient_ids=[episode.patient_id], details={"consent_id": str(consent.id)})
    return disclosure


def accounting(*, patient: Patient, since: dt.datetime | None, cursor: str | None, limit: int):
    """The accounting of disclosures: every disclosure of the patient's records in the last
    three calendar years by default (or since `since`), newest first."""
    if since is None:
        now = utcnow()
        since = now.replace(year=now.year - 3, day=28 if (now.month, now.day) == (2, 29) else now.day)
    stmt = sa.select(Disclosure).where(Disclosure.patient_id == patient.id, Disclosure.disclosed_at >= since)
    disclosures, next_cursor = keyset_page(stmt, keys=[Disclosure.disclosed_at, Disclosure.id], cursor=cursor,
                                           limit=limit, descending=True, session=db.session)
    audit.record("disclosure.accounting", patient_ids=[patient.id], details={"count": len(disclosures)})
    return disclosures, next_cursor
