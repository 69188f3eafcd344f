"""`flask --app backend demo seed`: demo data for a development machine.

Seeds once (when there are no users yet) and prints every demo account with its password.
Refused in production. Later modules add their own demo records here.
"""

from __future__ import annotations

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from backend import unit_of_work
from backend.auth import service as auth_service
from backend.auth.models import Role, User
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
]


@demo_cli.command("seed")
def seed_command() -> None:
    """Create the demo accounts (and data) unless users already exist."""
    if current_app.config["BRIDGELINE_ENV"] == "production":
        raise click.ClickException("demo data is refused in production")
    if db.session.scalar(sa.select(sa.func.count()).select_from(User)):
        click.echo("demo data: users already exist, nothing seeded")
        return
    for username, display_name, role, password in DEMO_USERS:
        auth_service.create_user(username=username, display_name=display_name, role=role, password=password)
    unit_of_work.complete()
    click.echo("demo accounts (username / password / role):")
    for username, _name, role, password in DEMO_USERS:
        click.echo(f"  {username:<14} {password:<18} {role}")
