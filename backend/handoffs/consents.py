"""42 CFR Part 2 consent for disclosures to programs outside the hospital's SUD program.

Until consents can be recorded, no disclosure to an external program has a consent to rely on:
every one is refused with 409 `consent-required` (handoffs within the program need none).
"""

from __future__ import annotations

from backend.errors import Problem


def disclose_or_refuse(*, episode, program, summary: dict, actor) -> None:
    raise Problem(409, f"{program.name} is outside the program: a 42 CFR Part 2 consent naming it and "
                       f"covering the handoff summary is required first.", type="consent-required",
                  recipient_program_id=str(program.id))
