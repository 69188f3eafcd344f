"""Bridgeline: case management for hospital recovery coaches (a Flask JSON API).

`create_app()` builds the application: configuration, extensions, the request cycle, error
handlers, blueprints and the command-line groups. `flask --app backend …` finds it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click
from flask.cli import AppGroup
from werkzeug.middleware.proxy_fix import ProxyFix

from backend import error_reports, errors, logs, watchdog, web
from backend.audit import outbox as audit_outbox
from backend.config import Config
from backend.database import WriterQueueConnection, ping_when_idle
from backend.extensions import api, db, migrate

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SPEC_PATH = Path(__file__).resolve().parent.parent / "mobile_api_spec" / "openapi.json"


def create_app(config: Config | None = None) -> web.BridgelineFlask:
    config = config or Config()
    config.validate()
    logs.configure(config.LOG_LEVEL)

    app = web.BridgelineFlask(__name__)
    app.config.from_mapping(config.as_dict())
    error_reports.init(app.config)  # only with SENTRY_DSN: the workers, the clock, the commands
    if not app.config["SQLALCHEMY_DATABASE_URI"]:
        os.makedirs(app.instance_path, exist_ok=True)
        app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{Path(app.instance_path) / 'bridgeline.db'}"
    # Parameters stay out of error messages (and so out of logs): they hold patient data.
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {**app.config["SQLALCHEMY_ENGINE_OPTIONS"], "hide_parameters": True}
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # No JIT: its compile time (seconds) is spent on plans whose row estimates run high, as the
        # outcomes report's joins of aggregates do, and short OLTP queries never gain from it.
        # A bounded connect and statement time: an unreachable or frozen database answers 503
        # within seconds instead of holding a worker until gunicorn kills it.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] = {
            # Sessions in UTC (what every timestamp is stored and shown in), whatever the server's
            # default: the driver then reads a timestamp as `datetime.timezone.utc`, nothing to
            # convert (a caseload reads some 500).
            "options": f"-c jit=off -c timezone=UTC "
                       f"-c statement_timeout={app.config['DATABASE_STATEMENT_TIMEOUT_SECONDS'] * 1000}",
            "connect_timeout": app.config["DATABASE_CONNECT_TIMEOUT_SECONDS"],
            # TCP keepalives: a pooled connection whose server vanished (a failover, a dropped
            # network path: no reset ever comes) is found dead within about a minute, not hours.
            "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}
    elif app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        # A bounded wait for another writer's lock (sqlite3's busy timeout); then 503, not a hang.
        # Writers queue for the lock in turn (`WriterQueueConnection`), never sleep-and-retry.
        app.config["SQLALCHEMY_ENGINE_OPTIONS"]["connect_args"] = {
            "timeout": app.config["DATABASE_BUSY_TIMEOUT_SECONDS"], "factory": WriterQueueConnection}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"]["execution_options"] = {
            "sqlite_busy_timeout_ms": int(app.config["DATABASE_BUSY_TIMEOUT_SECONDS"] * 1000)}
    if app.config["TRUSTED_PROXY_COUNT"]:
        n = app.config["TRUSTED_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)
    app.json.sort_keys = False

    db.init_app(app)
    audit_outbox.init_app(app)
    with app.app_context():
        app.extensions["bridgeline.watchdog"] = watchdog.attach(db.engine)
        ping_when_idle(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
    api.init_app(app)
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer"})
    api.spec.options["security"] = [{"bearer": []}]
    web.init_app(app)
    errors.init_app(app)
    _register_blueprints(app)
    _register_commands(app)
    return app


def _register_blueprints(app) -> None:
    from backend.auth.api import blp as auth_blp
    from backend.auth.audit_api import blp as audit_blp
    from backend.caseload.api import blp as caseload_blp
    from backend.cases.activities_api import blp as activities_blp
    from backend.cases.api import blp as cases_blp
    from backend.consents.api import blp as consents_blp
    from backend.continuity.api import blp as continuity_blp
    from backend.handoffs import service as handoffs_service
    from backend.handoffs.api import blp as handoffs_blp
    from backend.interop.api import blp as interfaces_blp
    from backend.interop.fhir_api import blp as interop_blp
    from backend.ops.api import blp as ops_blp
    from backend.ops.scrape import blp as metrics_blp
    from backend.outreach import planning as outreach_planning
    from backend.outreach.api import blp as outreach_blp
    from backend.outreach.webhooks import blp as webhooks_blp
    from backend.reports.api import blp as reports_blp
    from backend.sync.api import blp as sync_blp

    for blp in (ops_blp, auth_blp, audit_blp, cases_blp, activities_blp, caseload_blp, handoffs_blp, consents_blp,
                continuity_blp, outreach_blp, sync_blp, reports_blp, interop_blp):
        api.register_blueprint(blp)
    app.register_blueprint(webhooks_blp)  # for Twilio, not in the phone app's contract
    app.register_blueprint(metrics_blp)  # for the monitoring system, not in the phone app's contract
    app.register_blueprint(interfaces_blp)  # for the hospital's interface engine, not in the phone app's contract
    from backend import console

    console.init_app(app)  # the staff console's pages, not in the phone app's contract
    handoffs_service.connect_signals()
    outreach_planning.connect_signals()


def _register_commands(app) -> None:
    from backend.audit.cli import audit_cli
    from backend.auth.cli import users_cli
    from backend.clock import clock_command
    from backend.demo import demo_cli
    from backend.handoffs.cli import handoffs_cli
    from backend.outreach.cli import outreach_cli
    from backend.reports.cli import reports_cli

    for command in (users_cli, audit_cli, demo_cli, clock_command, spec_cli, handoffs_cli, outreach_cli,
                    reports_cli):
        app.cli.add_command(command)


spec_cli = AppGroup("spec", help="The published OpenAPI contract (mobile_api_spec/).")


@spec_cli.command("write")
def write_spec_command() -> None:
    """Regenerate mobile_api_spec/openapi.json from the code."""
    SPEC_PATH.write_text(render_spec())
    click.echo(f"wrote {SPEC_PATH}")


def render_spec() -> str:
    return json.dumps(api.spec.to_dict(), indent=2, sort_keys=True) + "\n"
