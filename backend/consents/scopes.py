"""Who sees which consents: those of the patients they may see (backend.cases.scopes)."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.access import Scope
from backend.cases.models import Patient
from backend.cases.scopes import patient_visible_to
from backend.consents.models import Consent

CONSENTS = Scope(Consent, "consent",
                 lambda user: sa.exists().where(Patient.id == Consent.patient_id, patient_visible_to(user)),
                 lambda consent: [consent.patient_id])
