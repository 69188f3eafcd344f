"""Handoffs between levels of care (the closed-loop handoff log), the community programs
directory, 42 CFR Part 2 consent with the accounting of disclosures, and deadline escalation."""
