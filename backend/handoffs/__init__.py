"""Handoffs between levels of care: the closed-loop handoff log and its deadline escalation."""
