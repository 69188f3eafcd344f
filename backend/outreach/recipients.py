"""What texting tells us about a recipient: opted out, or a number that cannot take texts.

Twilio error 21610 (the recipient replied STOP to this sender) opts the patient out, which
cancels every queued text (privacy.md); 21211 (invalid number), 21614 (not a mobile number),
30005 (unknown destination) and 30006 (landline) flag the phone invalid: texts to it are blocked
and the caseload tells the coach (`phone_invalid`) until the phone is changed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

import sqlalchemy as sa

from backend.cases import service as cases
from backend.cases.models import Patient, SmsStatus
from backend.database import utcnow
from backend.extensions import db

OPTED_OUT_CODES = frozenset({21610})
INVALID_NUMBER_CODES = frozenset({21211, 21614, 30005, 30006})


def phone_refusal(phone: str | None, phone_invalid_at: dt.datetime | None) -> str | None:
    """Why texts cannot go to this phone, or None when they can."""
    if not phone:
        return "no phone number on file"
    if phone_invalid_at is not None:
        return "the phone number was refused as invalid; update it"
    return None


def apply_error_code(patient_id: uuid.UUID, code: int | None) -> None:
    if code in OPTED_OUT_CODES:
        set_status([patient_id], SmsStatus.OPTED_OUT)
    elif code in INVALID_NUMBER_CODES:
        patient = _locked([patient_id])[0]
        if patient.phone_invalid_at is None:
            patient.phone_invalid_at, patient.phone_invalid_code = utcnow(), code
            db.session.flush()


def set_status(patient_ids: Iterable[uuid.UUID], status: SmsStatus) -> list[Patient]:
    """Opt patients in or out by keyword (a reply, or Twilio's 21610); return those changed."""
    changed = []
    for patient in _locked(patient_ids):
        if patient.sms_status != status:
            changed.append(cases.set_sms_consent(patient=patient, status=status, method="keyword"))
    return changed


def _locked(patient_ids: Iterable[uuid.UUID]) -> list[Patient]:
    return list(db.session.scalars(
        sa.select(Patient).where(Patient.id.in_(list(patient_ids))).order_by(Patient.id)
        .with_for_update().execution_options(populate_existing=True)))
