"""The audit trail: an append-only, hash-chained record of every access to patient data and of
sign-ins, failures and revocations. Other modules call `backend.audit.service.record`."""
