"""The command-line bootstrap of the first admin (api.md) and the demo data."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.models import User
from backend.extensions import db


def test_users_create_reads_the_password_from_stdin(app, anonymous):
    result = app.test_cli_runner().invoke(
        args=["users", "create", "First.Admin", "--role", "admin", "--display-name", "First Admin"],
        input="a long admin passphrase\n")
    assert result.exit_code == 0, result.output
    assert "created admin first.admin" in result.output
    assert "passphrase" not in result.output
    signed_in = anonymous.post("/api/v1/auth/tokens", json={"username": "first.admin",
                                                            "password": "a long admin passphrase"})
    assert signed_in.status_code == 201 and signed_in.get_json()["user"]["role"] == "admin"


def test_users_create_refuses_a_taken_username_or_short_password(app):
    runner = app.test_cli_runner()
    args = ["users", "create", "dup.admin", "--role", "admin", "--display-name", "Dup"]
    assert runner.invoke(args=args, input="a long admin passphrase\n").exit_code == 0
    again = runner.invoke(args=args, input="another long passphrase\n")
    assert again.exit_code == 1 and "taken" in again.output
    short = runner.invoke(args=["users", "create", "short.pw", "--role", "coach", "--display-name", "S"],
                          input="short\n")
    assert short.exit_code == 2 and "password" in short.output


def test_demo_seed_creates_every_role_once_and_prints_passwords(app, ctx):
    db.session.execute(sa.text("DELETE FROM device_sessions"))
    db.session.execute(sa.delete(User))
    db.session.commit()
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed"])
    assert "adt.feed" in first.output and "demo-interface-pass" in first.output
    assert first.exit_code == 0, first.output
    roles = set(db.session.scalars(sa.select(User.role)).all())
    assert {str(r) for r in roles} == {"coach", "ed_nurse", "clinic_staff", "admin", "interface"}
    assert "demo-coach-pass" in first.output
    second = runner.invoke(args=["demo", "seed"])
    assert "nothing seeded" in second.output


def test_demo_data_shows_every_coach_a_caseload_with_its_rules_at_work(app, anonymous, ctx):
    db.session.execute(sa.text("DELETE FROM device_sessions"))
    db.session.execute(sa.delete(User))
    db.session.commit()
    assert app.test_cli_runner().invoke(args=["demo", "seed"]).exit_code == 0
    reasons = set()
    for coach in ("coach.maria", "coach.dev", "coach.sam"):
        anonymous.sign_in(coach, "demo-coach-pass")
        entries = anonymous.get("/api/v1/caseload").get_json()["items"]
        assert len(entries) >= 5
        reasons |= {r for e in entries for r in e["priority_reasons"]}
    assert reasons >= {"overdue_task", "not_contacted_since_discharge", "missed_appointment_not_followed_up",
                       "unread_reply", "no_contact_7_days"}
    anonymous.sign_in("clinic.riley", "demo-clinic-pass")
    review = anonymous.get("/api/v1/caseloads").get_json()
    assert review["unassigned"]["count"] >= 2 and review["at_risk"]["no_clinic_visit_72h"]["count"] >= 1
    statuses = {h["status"] for h in anonymous.get("/api/v1/handoffs?limit=200").get_json()["items"]}
    assert statuses == {"sent", "accepted", "declined", "completed", "no_show", "cancelled"}
    services = {p["service"] for p in anonymous.get("/api/v1/programs?limit=200").get_json()["items"]}
    assert len(services) == 9 and any(r["handoffs_overdue"] for r in review["coaches"])
    assert len(anonymous.get("/api/v1/inbox?unread=true").get_json()["items"]) == 2  # one from an unknown number
    # The ADT feed brought one of Maria's patients back to the ED: first in her caseload, on the review's list.
    assert review["at_risk"]["back_in_ed"]["count"] == 1
    anonymous.sign_in("coach.maria", "demo-coach-pass")
    first = anonymous.get("/api/v1/caseload").get_json()["items"][0]
    assert first["priority_reasons"][0] == "back_in_ed"
    timeline = anonymous.get(f"/api/v1/episodes/{first['episode_id']}/timeline").get_json()["items"]
    assert any(item["kind"] == "back_in_ed" and item["detail"]["overdose"] for item in timeline)


def test_a_coach_can_send_a_template_text_on_a_fresh_demo(app, anonymous, ctx):
    """The demo has message templates in both languages Bridgeline texts in, and opted-in
    patients: a coach trying the app can send a template text straight away."""
    db.session.execute(sa.text("DELETE FROM device_sessions"))
    db.session.execute(sa.delete(User))
    db.session.commit()
    assert app.test_cli_runner().invoke(args=["demo", "seed"]).exit_code == 0
    anonymous.sign_in("coach.maria", "demo-coach-pass")
    listed = anonymous.get("/api/v1/message-templates?limit=200").get_json()["items"]
    assert {t["language"] for t in listed} == {"en", "es"} and len({t["name"] for t in listed}) >= 2
    english = next(t for t in listed if t["language"] == "en" and "{appointment_time}" not in t["body"])
    for entry in anonymous.get("/api/v1/caseload").get_json()["items"]:
        if anonymous.get(f"/api/v1/patients/{entry['patient_id']}").get_json()["sms_status"] == "opted_in":
            sent = anonymous.post(f"/api/v1/patients/{entry['patient_id']}/messages",
                                  json={"template_id": english["id"]})
            assert sent.status_code == 202, sent.get_json()
            assert sent.get_json()["template_id"] == english["id"]
            break
    else:
        raise AssertionError("no demo patient of coach.maria takes texts")


def test_the_interface_account_is_made_by_the_documented_command(app, ctx):
    runner = app.test_cli_runner()
    made = runner.invoke(args=["users", "create", "adt-feed", "--role", "interface", "--display-name",
                               "Hospital ADT feed"], input="a long interface passphrase\n")
    assert made.exit_code == 0, made.output
    assert "created interface adt-feed" in made.output
    user = db.session.scalar(sa.select(User).where(User.username == "adt-feed"))
    assert str(user.role) == "interface" and str(user.access) == "active"  # not a clinical role: no second approval
