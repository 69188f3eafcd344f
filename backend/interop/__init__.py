"""Talking to the hospital: the episode as FHIR R4 (`fhir.py`, `exports.py`) and the HL7 v2 ADT
feed from the hospital's interface engine (`adt.py`), with the visits it reports (`models.py`).

Stands above handoffs, consents and continuity (the export reads them all, and reuses the Part 2
gate of `backend.consents.service`) and below the caseload and the review, which read the
visits the feed records (`back_in_ed`)."""
