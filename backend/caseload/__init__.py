"""Read models of the case: the coach's caseload, the clinic's caseload review and an episode's timeline.

They combine the domains (cases, handoffs, outreach) for reading, as `sync` and `reports` do;
no domain imports them. They write nothing but the audit events of their reads."""
