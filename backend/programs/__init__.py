"""The community programs directory (a small domain below cases, consents and handoffs)."""
