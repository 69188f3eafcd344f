"""Cases: patients, episodes across levels of care, the coach's contact log, tasks,
appointments, the prioritised caseload and the clinic's caseload review."""
