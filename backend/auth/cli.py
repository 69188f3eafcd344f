"""`flask --app backend users …`: account administration from the command line.

`users create` bootstraps the first admin (api.md). The password is read from standard input
when it is not a terminal (`printf '%s\n' "$PW" | flask --app backend users create …`), and
prompted for twice otherwise; it never appears in the command line or the logs.
"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup
from marshmallow import ValidationError

from backend import unit_of_work
from backend.auth import service
from backend.auth.models import Role
from backend.auth.schemas import UserCreateSchema
from backend.errors import Problem, flatten_messages

users_cli = AppGroup("users", help="Manage user accounts.")


@users_cli.command("create")
@click.argument("username")
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--display-name", required=True)
def create_user_command(username: str, role: str, display_name: str) -> None:
    """Create a user; the password comes from stdin (or a prompt on a terminal)."""
    if sys.stdin.isatty():
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        body = UserCreateSchema().load({"username": username, "role": role,
                                        "display_name": display_name, "password": password})
        user = service.create_user(**body)
        unit_of_work.commit()
    except ValidationError as exc:
        unit_of_work.roll_back(None)
        for field, messages in flatten_messages(exc.messages).items():
            click.echo(f"error: {field}: {' '.join(messages)}", err=True)
        raise SystemExit(2) from None
    except Problem as exc:
        unit_of_work.roll_back(None)
        click.echo(f"error: {exc.description}", err=True)
        raise SystemExit(1) from None
    click.echo(f"created {user.role} {user.username} ({user.id})")
