"""`flask --app backend demo seed`: demo data for a development machine.

Seeds once (when there are no users yet) and prints every demo account with its password.
Refused in production. Later modules add their own demo records here. Every name is fictional.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from backend import unit_of_work
from backend.auth import service as auth_service
from backend.auth.models import Role, User
from backend.database import utcnow
from backend.extensions import db

demo_cli = AppGroup("demo", help="Demo data for development.")

#: (username, display name, role, password) — demo only, never in production.
DEMO_USERS = [
    ("admin", "Avery Admin", Role.ADMIN, "demo-admin-pass"),
    ("coach.maria", "Maria Coach", Role.COACH, "demo-coach-pass"),
    ("coach.dev", "Dev Coach", Role.COACH, "demo-coach-pass"),
    ("coach.sam", "Sam Coach", Role.COACH, "demo-coach-pass"),
    ("nurse.jordan", "Jordan Nurse", Role.ED_NURSE, "demo-nurse-pass"),
    ("clinic.riley", "Riley Clinic", Role.CLINIC_STAFF, "demo-clinic-pass"),
    # the hospital interface engine's service account: it may only post the ADT feed
    ("adt.feed", "Hospital ADT feed", Role.INTERFACE, "demo-interface-pass"),
]


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo accounts (and data) unless users already exist."""
    if current_app.config["BRIDGELINE_ENV"] == "production":
        raise click.ClickException("demo data is refused in production")
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        click.echo("demo data: users already exist, nothing seeded")
        return
    users = {username: auth_service.create_user(username=username, display_name=display_name, role=role,
                                                password=password)
             for username, display_name, role, password in DEMO_USERS}
    _seed_caseloads(users)
    _seed_programs_and_handoffs(users)
    _seed_replies()
    _seed_templates()
    _seed_adt_feed(users)
    unit_of_work.commit()
    click.echo("demo accounts (username / password / role):")
    for username, _name, role, password in DEMO_USERS:
        click.echo(f"  {username:<14} {password:<18} {role}")


#: Fictional patients: (given, family, preferred).
_NAMES = [("Jordan", "Okafor", None), ("Casey", "Lindqvist", "Case"), ("Riley", "Moreno", None),
          ("Morgan", "Abara", None), ("Taylor", "Nguyen", "Tay"), ("Jamie", "Kowalski", None),
          ("Avery", "Delgado", None), ("Quinn", "Harrow", None), ("Drew", "Castellanos", None),
          ("Reese", "Fontaine", None), ("Skyler", "Brandt", None), ("Rowan", "Achebe", None),
          ("Emerson", "Vale", None), ("Parker", "Ostrowski", None), ("Sage", "Tremblay", None),
          ("Kendall", "Mbeki", None), ("Hayden", "Ruiz", None), ("Blair", "Sorensen", None),
          ("Dakota", "Ferreira", None), ("Ellis", "Kaminski", None)]

#: The stages a demo episode can be at (hours since arrival, and what happened since).
_STAGES = ["in_ed", "discharged_not_contacted", "attempts_then_contact", "missed_appointment",
           "overdue_task", "visit_booked"]


def _seed_caseloads(users) -> None:
    """A realistic spread: each coach holds patients at every stage, plus unassigned episodes
    and a closed one, so the caseload and the review show their rules at work."""
    from backend.cases import activities
    from backend.cases import service as cases

    nurse, clinic = users["nurse.jordan"], users["clinic.riley"]
    coaches = [users["coach.maria"], users["coach.dev"], users["coach.sam"]]
    now = utcnow()
    hours = lambda n: now - dt.timedelta(hours=n)  # noqa: E731
    names = iter(_NAMES)
    for number, (coach, stage) in enumerate([(c, s) for c in coaches for s in _STAGES[:5 + (c is coaches[0])]]):
        given, family, preferred = next(names, ("Alex", f"Demo{number}", None))
        patient = cases.register_patient(actor=nurse, fields={
            "mrn": f"DEMO{1000 + number}", "given_name": given, "family_name": family,
            "preferred_name": preferred, "birth_date": dt.date(1970 + number % 30, 1 + number % 12, 1 + number % 27),
            "phone": f"+1617555{1000 + number:04d}",
            # Chelsea and Revere: about a third of the demo patients read Spanish first
            "language": ["en", "es-US", "en", "es"][number % 4]})
        if number % 3 != 2:  # most agreed to texts in the ED; some were not asked yet
            cases.set_sms_consent(patient=patient, status="opted_in", method="verbal")
        episode = cases.open_episode(patient=patient, level="emergency_department",
                                     presenting_reason=["overdose", "withdrawal", "other"][number % 3],
                                     arrived_at=hours(96), coach_id=coach.id, flags={}, actor=nurse)
        _seed_continuity(episode, number, nurse, hours)
        if stage == "in_ed":
            continue
        cases.discharge(episode=episode, discharged_at=hours(72 if stage != "discharged_not_contacted" else 30),
                        disposition=["home", "home", "home", "against_medical_advice", "home"][number % 5], actor=nurse)
        if stage == "discharged_not_contacted":
            continue
        for fields in ({"kind": "attempt", "outcome": "no_answer", "occurred_at": hours(60)},
                       {"kind": "attempt", "outcome": "left_message", "occurred_at": hours(50)},
                       {"kind": "phone", "occurred_at": hours(40), "duration_minutes": 12}):
            activities.log_encounter(episode=episode, actor=coach, fields=fields)
        if stage == "missed_appointment":
            visit, _ = activities.book_appointment(episode=episode, actor=nurse,
                                                   fields={"kind": "transition_clinic", "starts_at": hours(20)})
            activities.update_appointment(appointment=visit, changes={"status": "missed"})
        elif stage == "overdue_task":
            activities.create_task(episode=episode, actor=coach,
                                   fields={"title": "Check on buprenorphine refill", "due_at": hours(6)})
        elif stage == "visit_booked":
            activities.book_appointment(episode=episode, actor=nurse, fields={
                "kind": "transition_clinic", "starts_at": now + dt.timedelta(hours=20), "location": "Bridge clinic"})
            activities.create_task(episode=episode, actor=coach, fields={
                "title": "Remind about tomorrow's visit", "window_start": now, "due_at": now + dt.timedelta(hours=18)})
    for given, family, preferred in [next(names, ("Sam", "Unassigned", None)) for _ in range(2)]:
        patient = cases.register_patient(actor=nurse, fields={
            "given_name": given, "family_name": family, "preferred_name": preferred, "birth_date": dt.date(1988, 5, 5)})
        cases.open_episode(patient=patient, level="inpatient", presenting_reason="withdrawal", arrived_at=hours(10),
                           coach_id=None, flags={}, actor=nurse)
    given, family, preferred = next(names, ("Lee", "Closed", None))
    patient = cases.register_patient(actor=nurse, fields={"given_name": given, "family_name": family,
                                                          "birth_date": dt.date(1979, 3, 3)})
    closed = cases.open_episode(patient=patient, level="emergency_department", presenting_reason="overdose",
                                arrived_at=hours(400), coach_id=coaches[1].id, flags={}, actor=nurse)
    cases.close_episode(episode=closed, reason="engaged_in_care", note=None, actor=clinic)


def _seed_continuity(episode, number: int, nurse, hours) -> None:
    """Half the patients got a naloxone kit with training in the ED; most got a buprenorphine
    bridge, some of which end within two days (the caseload's `moud_supply_ending`, cleared
    where a clinic visit is booked before the end)."""
    from backend.continuity import medications, naloxone

    if number % 2 == 0:
        naloxone.log(episode=episode, actor=nurse, fields={
            "kind": "given", "distributed_at": hours(90), "recipient": "patient", "product": "nasal_4mg", "doses": 2,
            "training_given": True, "setting": "emergency_department"})
    if number % 4 != 3:
        started_on = (utcnow() - dt.timedelta(hours=90)).astimezone(
            zoneinfo.ZoneInfo(episode.patient.timezone)).date()
        medications.log_supply(episode=episode, actor=nurse, fields={
            "medication": "buprenorphine", "form": "sublingual film 8 mg", "kind": "bridge_prescription",
            "source": "emergency_department", "started_on": started_on, "days_supplied": 5 if number % 2 else 7})


def _seed_templates() -> None:
    """Templates a coach picks from, in English and Spanish."""
    from backend.outreach import templates

    for language, name, body in (
            ("en", "Ride to the clinic", "Hi {first_name}, your ride comes at {appointment_time}. "
                                         "Call {callback_phone} if plans change."),
            ("es", "Ride to the clinic", "Hola {first_name}, su transporte llega a las {appointment_time}. "
                                         "Llame al {callback_phone} si algo cambia."),
            ("en", "Thinking of you", "Hi {first_name}, {coach_name} here. Thinking of you today."),
            ("es", "Thinking of you", "Hola {first_name}, soy {coach_name}. Pensando en usted hoy.")):
        templates.create(name=name, body=body, language=language)


def _seed_replies() -> None:
    """Two unread replies in the inboxes: one from a patient, one from a number nobody has."""
    from backend.outreach import inbound

    for number, (phone, body) in enumerate([("+16175551001", "Thanks for checking in. Can we talk tomorrow?"),
                                            ("+16175559876", "Who is this?")]):
        inbound.receive({"MessageSid": f"SMdemo{number:026d}", "From": phone, "Body": body})


#: One program of every service kind: (name, service, ASAM level, external).
_PROGRAMS = [("Harbor Methadone Program", "otp", "1", True), ("Eastside Primary Care OBOT", "obot", "1", True),
             ("Hospital Intensive Outpatient", "iop", "2.1", False),
             ("Riverbend Residential", "residential", "3.5", True),
             ("Hospital Withdrawal Unit", "withdrawal_management", "3.7", False),
             ("Lighthouse Recovery Center", "recovery_center", None, True),
             ("Street Outreach Harm Reduction", "harm_reduction", None, True),
             ("Maple House Recovery Residence", "recovery_housing", None, True),
             ("Peer Support Collective", "other", None, True)]


def _seed_programs_and_handoffs(users) -> None:
    """The directory, and handoffs in every status on the demo episodes (one overdue, one to an
    external program under a Part 2 consent)."""
    import sqlalchemy as sa

    from backend.cases.models import Episode
    from backend.consents import service as consents
    from backend.handoffs import service as handoffs
    from backend.programs import service as directory

    programs = [directory.create_program(fields={
        "name": name, "service": service, "asam_level": level, "asam_edition": "4th" if level else None,
        "phone": "+16175550100", "accepting_patients": name != "Maple House Recovery Residence", "external": external})
        for name, service, level, external in _PROGRAMS]
    nurse, clinic = users["nurse.jordan"], users["clinic.riley"]
    episodes = db.session.scalars(sa.select(Episode).where(Episode.is_open,
                                                           Episode.coach_id.is_not(None))
                                  .order_by(Episode.opened_at, Episode.id)).all()
    summary = {"moud": "buprenorphine", "naloxone_given": True, "plan": "Continue 16 mg daily"}
    now = utcnow()
    steps = {"sent": [], "accepted": ["accept"], "declined": ["decline"], "completed": ["accept", "complete"],
             "no_show": ["accept", "no_show"], "cancelled": ["cancel"]}
    for episode, path in zip(episodes, steps.values(), strict=False):
        handoff = handoffs.send_handoff(episode=episode, actor=nurse, fields={
            "to_level": "transition_clinic", "method": "warm_in_person", "summary": summary})
        for action in path:
            handoffs.take_step(handoff=handoff, action=action, actor=clinic,
                               note="Demo: no capacity this week" if action in ("decline", "cancel") else None)
    overdue = episodes[len(steps)]
    handoffs.send_handoff(episode=overdue, actor=nurse, fields={
        "to_level": "transition_clinic", "method": "referral", "summary": summary,
        "accept_by": now - dt.timedelta(hours=2), "arrive_by": now + dt.timedelta(hours=30)})
    in_clinic = episodes[3]  # its clinic handoff completed above
    otp = programs[0]
    consents.record_consent(patient=in_clinic.patient, actor=clinic, fields={
        "recipient_program_id": otp.id, "purpose": "Ongoing medication treatment", "information": ["handoff_summary"],
        "signed_at": now - dt.timedelta(hours=1), "signature_method": "written", "expires_on_end_of_treatment": True})
    handoffs.send_handoff(episode=in_clinic, actor=clinic, fields={
        "to_level": "community_program", "to_program_id": otp.id, "method": "warm_phone", "summary": summary})


def _seed_adt_feed(users) -> None:
    """The hospital's ADT feed at work: a patient Maria reached after discharge is registered in
    the ED again (an opioid overdose, ICD-10-CM T40.1X1A) 3 hours ago — back in the ED, first in
    her caseload and on the review's list, with a task due — sent as the interface engine would."""
    from backend.interop import adt

    now = utcnow()
    stamp = lambda moment: moment.strftime("%Y%m%d%H%M%S+0000")  # noqa: E731
    mrn = "DEMO1002"  # coach.maria's patient reached 40 h ago (`attempts_then_contact`)
    message = "\r".join([
        f"MSH|^~\\&|EPIC|DEMOHOSP|BRIDGELINE|BRIDGELINE|{stamp(now)}||ADT^A04^ADT_A01|DEMO-ADT-0001|P|2.5",
        f"EVN|A04|{stamp(now - dt.timedelta(hours=3))}",
        f"PID|1||{mrn}^^^DEMOHOSP^MR||Moreno^Riley||19720301|U",
        "PV1|1|E|ED^^^DEMOHOSP" + "|" * 16 + "DEMOV2002" + "|" * 25 + stamp(now - dt.timedelta(hours=3)),
        "DG1|1||T40.1X1A^Poisoning by heroin, accidental^I10"]) + "\r"
    ack = adt.receive(message.encode(), user=users["adt.feed"])
    assert "MSA|AA|" in ack, ack
