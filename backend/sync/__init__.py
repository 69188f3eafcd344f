"""The phone's offline copy: a change feed of everything a coach's phone keeps, and the sync
that serves it (api.md "Sync").

Layer: a read model above the domains, beside `backend.caseload`; reports read its feed."""
