"""The admin's screens of the console: users (with the two-person rule shown), the programs
directory, message templates with their privacy and segment check, and the audit trail with
its chain check (console.md "Who does what").

An admin is not a clinician (privacy.md): none of these pages shows patient data beyond the ids
the audit trail names. Each view calls the service its API twin calls — `backend.auth.service`,
`backend.programs.service`, `backend.outreach.templates`, `backend.audit.service` — so the rules
and the audit events are the API's own.
"""

from __future__ import annotations

from backend.console.admin import audit, programs, templates, users  # noqa: F401 - registers the routes
