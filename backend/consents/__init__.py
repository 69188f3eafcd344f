"""42 CFR Part 2 consent: consents, revocations, the disclosures made under them and their
accounting.

Layer: a domain built on cases (consents are a patient's), below handoffs, which ask it whether
a disclosure to an external program may go."""
