"""42 CFR Part 2 consent: consents, revocations, the disclosures made under them and their accounting."""
