"""Continuity of treatment: naloxone in hand (the naloxone log) and medication for opioid use
disorder that never runs out (medication supplies, and the escalation before one ends).

Layer: a domain built on cases, beside consents (neither imports the other). The log and the
supplies are the one source of truth for the episode's `naloxone_given` and `moud` flags: this
package's services set them through `backend.cases.service.derive_flags`, and nothing else
writes them. The caseload, the timeline, the sync and the reports read its models."""
