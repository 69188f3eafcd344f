"""One-way notifications between domains, declared in one place (as Indico's `signals`).

A domain sends a signal when something happened that others may act on; it never imports
them. Receivers connect in their own module and run inside the sender's unit of work (they
flush, never commit). Each signal's sender is the record it is about.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

episode_discharged = _signals.signal("episode-discharged", doc="""
The patient left the ED or the ward (sender: the Episode). Outreach plans the post-discharge
check-in texts.""")

episode_closed = _signals.signal("episode-closed", doc="""
The episode closed with a reason (sender: the Episode). Open tasks are already cancelled;
handoffs cancel their open handoffs and outreach its queued automatic texts.""")

episode_coach_changed = _signals.signal("episode-coach-changed", doc="""
The primary coach changed (sender: the Episode; `previous_coach_id` keyword).""")

appointment_changed = _signals.signal("appointment-changed", doc="""
An appointment was booked, moved, or its status changed (sender: the Appointment;
`change` keyword: booked, rescheduled, attended, missed, cancelled). Outreach plans or
cancels reminders; the first transition-clinic visit `attended` completes the open
ED-to-clinic handoff.""")

sms_consent_changed = _signals.signal("sms-consent-changed", doc="""
A patient's SMS status changed (sender: the Patient). Opting out cancels queued texts.""")
