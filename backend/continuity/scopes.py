"""Who sees a medication supply: whoever sees its episode (cases.scopes)."""

from __future__ import annotations

from backend.auth.access import Scope
from backend.cases.scopes import on_visible_episode, patient_of_episode
from backend.continuity.models import MedicationSupply

MEDICATION_SUPPLIES = Scope(MedicationSupply, "medication_supply", on_visible_episode(MedicationSupply),
                            patient_of_episode)
