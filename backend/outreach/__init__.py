"""Outreach: SMS through Twilio — consent, privacy-safe templates, reminders with quiet hours,
the outbox and dispatcher, signed webhooks, opt-out and the coach's inbox.

Layer: a domain built on cases, beside handoffs (neither imports the other); it plans and
cancels texts on the cases domain's signals."""
