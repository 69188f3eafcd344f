"""Outreach: SMS through Twilio — consent, privacy-safe templates, reminders with quiet hours,
the outbox and dispatcher, signed webhooks, opt-out and the coach's inbox."""
