"""`flask --app backend audit verify` catches an altered or removed event and names it."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from backend.audit import service as audit_service
from backend.extensions import db


@pytest.fixture
def chain(app, ctx):
    """Five committed events; returns their (seq, id) in order."""
    for n in range(5):
        audit_service.record("test.event", details={"n": n})
    db.session.commit()
    return db.session.execute(sa.text("SELECT seq, id FROM audit_events ORDER BY seq")).all()


def _without_triggers(statement: str, **params) -> None:
    """What an intruder with database rights would do: drop the guard, change a row."""
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        db.session.execute(sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only"))
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
    db.session.execute(sa.text(statement), params)
    db.session.commit()


def verify(app):
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def test_an_intact_trail_verifies(app, chain):
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert re.search(r"(\d+) events verified", result.output)


def test_changing_one_field_of_one_event_fails_verify_naming_it(app, chain):
    seq, event_id = chain[2]
    _without_triggers("UPDATE audit_events SET client_ip = '10.6.6.6' WHERE seq = :seq", seq=seq)
    result = verify(app)
    assert result.exit_code == 1
    assert f"event {seq}" in result.output and str(event_id).replace("-", "") in result.output.replace("-", "")
    assert "contents do not match" in result.output


def test_removing_an_event_fails_verify_naming_the_gap(app, chain):
    seq, _ = chain[1]
    _without_triggers("DELETE FROM audit_events WHERE seq = :seq", seq=seq)
    result = verify(app)
    assert result.exit_code == 1 and f"event {seq} is missing" in result.output


def test_removing_the_newest_events_fails_verify(app, chain):
    seq, _ = chain[-1]
    _without_triggers("DELETE FROM audit_events WHERE seq = :seq", seq=seq)
    result = verify(app)
    assert result.exit_code == 1 and "newest events are missing" in result.output


def test_rewriting_an_event_and_its_hash_breaks_the_next_link(app, chain):
    from backend.audit.models import AuditEvent

    seq, _ = chain[1]
    event = db.session.get(AuditEvent, seq)
    event.action = "forged.action"
    forged = audit_service.compute_hash(event, event.patient_ids)
    db.session.rollback()
    _without_triggers("UPDATE audit_events SET action = 'forged.action', hash = :h WHERE seq = :seq",
                      h=forged, seq=seq)
    result = verify(app)
    assert result.exit_code == 1 and f"event {seq + 1}" in result.output
    assert "prev_hash" in result.output
