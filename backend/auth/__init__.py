"""Identity: staff accounts, device sessions (opaque bearer tokens), sign-in throttling, the
role groups, the declarative access rules (`backend.auth.access`) every endpoint uses, and the
audit trail's admin endpoint.

Layer: above the audit trail and the unit of work, below every domain."""
