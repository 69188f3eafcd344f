"""The audit trail: an append-only, hash-chained record of every access to patient data and of
sign-ins, failures and revocations.

Layer: just above the shared foundation, below identity and every domain, which all call
`backend.audit.service.record`; it imports nothing above it (its admin endpoint, which needs
identity's access rules, is `backend.auth.audit_api`)."""
