"""Reading an episode as FHIR, and exporting it to a program outside the hospital's SUD program.

An external export is a disclosure (privacy.md, "Exports (FHIR)"): it passes the same Part 2
gate as a handoff to an external program — `consents.require_consent`, the one rule, asked here
for the information kinds requested — carries only those kinds (`fhir.CONTENT_OF_KIND`), the
§2.32 notice (a `Composition` in the Bundle, and `NORDSLCD` on it) and is recorded in the
accounting of disclosures (`consents.record_disclosure`) with the whole Bundle as sent. A
program inside the hospital's program (`external` false) needs no consent; the export is then
not a Part 2 disclosure and is audited only. Idempotent on the client's `id` (the disclosure's
id): a retry answers the Bundle recorded the first time.
"""

from __future__ import annotations

import json
import uuid

from backend import idempotency
from backend.audit import service as audit
from backend.auth.models import User
from backend.cases.models import Episode
from backend.consents import service as consents
from backend.consents.models import Disclosure
from backend.interop import fhir
from backend.programs import service as programs


def read_bundle(*, episode: Episode) -> str:
    """The whole episode as FHIR JSON (the internal export), audited as a read of the episode."""
    bundle = fhir.episode_bundle(episode)
    audit.record("episode.fhir_export", resource_type="episode", resource_id=episode.id,
                 patient_ids=[episode.patient_id], details={"resources": len(bundle.entry or [])})
    return fhir.as_json(bundle)


def export(*, episode: Episode, fields: dict, actor: User) -> tuple[str, bool]:
    """Export to an outside program: (the Bundle's JSON, created). 409 `consent-required` unless
    an active consent names the program and covers every kind requested."""
    information = sorted(set(fields["information"]))
    request = {"episode_id": episode.id, "recipient_program_id": fields["recipient_program_id"],
               "information": information}
    existing = idempotency.created_before(Disclosure, fields.get("id"), request=request)
    if existing is not None:
        audit.record("disclosure.read", resource_type="disclosure", resource_id=existing.id,
                     patient_ids=[existing.patient_id])
        return json.dumps(existing.content["fhir_bundle"], separators=(",", ":")), False
    program = programs.named_program(fields["recipient_program_id"], field="recipient_program_id")
    contents = frozenset(fhir.CONTENT_OF_KIND[kind] for kind in information)
    if not program.external:
        bundle = fhir.episode_bundle(episode, contents=contents)
        audit.record("episode.fhir_export", resource_type="episode", resource_id=episode.id,
                     patient_ids=[episode.patient_id],
                     details={"recipient_program_id": str(program.id), "information": information})
        return fhir.as_json(bundle), True
    consent = consents.require_consent(episode=episode, program=program, information=information)
    bundle = fhir.episode_bundle(episode, contents=contents, notice=consents.NOTICE_2_32, recipient=program.name)
    text = fhir.as_json(bundle)
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    content = {"format": "FHIR R4 Bundle", "resources": ", ".join(sorted(set(kinds))),
               "fhir_bundle": json.loads(text)}
    consents.record_disclosure(consent=consent, episode=episode, program=program, content=content, handoff_id=None,
                               actor=actor, information=information, disclosure_id=fields.get("id") or uuid.uuid4())
    return text, True
