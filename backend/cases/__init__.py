"""Cases: patients, episodes across levels of care, and the coach's work on them (encounters,
tasks, appointments).

Layer: the core domain, above the programs directory and identity. It imports no domain built
on it (handoffs, outreach, consents): they react to its events through `backend.signals`, and
the views that combine them are read models (`backend.caseload`)."""
