"""Read models of the case: the coach's caseload, the clinic's caseload review and an episode's
timeline.

Layer: above the domains. They combine cases, handoffs and outreach for reading, as `sync` and
`reports` do, using each rule where its domain defines it; no domain imports them. They write
nothing but the audit events of their reads."""
