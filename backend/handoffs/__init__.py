"""Handoffs between levels of care: the closed-loop handoff log and its deadline escalation.

Layer: a domain built on cases (a completed handoff moves the episode's level through
`backend.cases.service`), consents and the programs directory; it serves the directory's
endpoints on its blueprint (the contract's grouping)."""
