"""`flask --app backend audit verify` catches an altered or removed event and names it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from backend import unit_of_work
from backend.audit import service as audit_service
from backend.audit.jobs import seal_batches_and_commit
from backend.extensions import db


@pytest.fixture
def chain(app, ctx):
    """Five committed events, sealed; returns their (place in the chain, id) in order."""
    for n in range(5):
        audit_service.record("test.event", details={"n": n})
    unit_of_work.commit()
    seal_batches_and_commit()
    return db.session.execute(sa.text("SELECT chain_seq, id FROM audit_events ORDER BY chain_seq")).all()


def _without_triggers(statement: str, **params) -> None:
    """What an intruder with database rights would do: drop the guards, change rows."""
    if db.engine.dialect.name == "postgresql":
        for table, trigger in (("audit_events", "audit_events_append_only"),
                               ("audit_chain_head", "audit_chain_head_forward")):
            db.session.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}"))
    else:
        for trigger in ("audit_events_no_update", "audit_events_no_delete", "audit_chain_head_forward"):
            db.session.execute(sa.text(f"DROP TRIGGER IF EXISTS {trigger}"))
    db.session.execute(sa.text(statement), params)
    db.session.commit()


def verify(app):
    return app.test_cli_runner().invoke(args=["audit", "verify"])


def test_an_intact_trail_verifies_naming_its_head_and_that_nothing_anchored_it(app, chain):
    result = verify(app)
    assert result.exit_code == 0, result.output
    head_seq, head_hash = audit_service.chain_head()
    assert f"{head_seq} events verified; head: event {head_seq}, hash {head_hash}" in result.output
    assert "anchors: none given" in result.output


def test_changing_one_field_of_one_event_fails_verify_naming_it(app, chain):
    seq, event_id = chain[2]
    _without_triggers("UPDATE audit_events SET client_ip = '10.6.6.6' WHERE chain_seq = :seq", seq=seq)
    result = verify(app)
    assert result.exit_code == 1
    assert f"event {seq}" in result.output and str(event_id).replace("-", "") in result.output.replace("-", "")
    assert "contents do not match" in result.output


def test_removing_an_event_fails_verify_naming_the_gap(app, chain):
    seq, _ = chain[1]
    _without_triggers("DELETE FROM audit_events WHERE chain_seq = :seq", seq=seq)
    result = verify(app)
    assert result.exit_code == 1 and f"event {seq} is missing" in result.output


def test_removing_the_newest_events_fails_verify(app, chain):
    seq, _ = chain[-1]
    _without_triggers("DELETE FROM audit_events WHERE chain_seq = :seq", seq=seq)
    result = verify(app)
    assert result.exit_code == 1 and "newest events are missing" in result.output


def test_rewriting_an_event_and_its_hash_breaks_the_next_link(app, chain):
    from backend.audit.models import AuditEvent

    seq, _ = chain[1]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.chain_seq == seq))
    event.action = "forged.action"
    forged = audit_service.compute_hash(event, event.patient_ids)
    db.session.rollback()
    _without_triggers("UPDATE audit_events SET action = 'forged.action', hash = :h WHERE chain_seq = :seq",
                      h=forged, seq=seq)
    result = verify(app)
    assert result.exit_code == 1 and f"event {seq + 1}" in result.output
    assert "prev_hash" in result.output


def test_rewriting_the_whole_chain_without_the_key_is_caught(app, chain):
    """An intruder who can write to the database but lacks AUDIT_HMAC_KEY alters an event,
    re-hashes every event after it and moves the head: verify still fails at that event."""
    from backend.audit.models import AuditEvent

    seq, _ = chain[1]
    real_key = app.config["AUDIT_HMAC_KEY"]
    app.config["AUDIT_HMAC_KEY"] = "the intruder's guess"
    try:
        forged = []
        prev = db.session.scalar(sa.select(AuditEvent.hash).where(AuditEvent.chain_seq == seq - 1))
        for event in db.session.scalars(sa.select(AuditEvent).where(AuditEvent.chain_seq >= seq)
                                        .order_by(AuditEvent.chain_seq)):
            event.action = "forged.action" if event.chain_seq == seq else event.action
            event.prev_hash = prev
            prev = audit_service.compute_hash(event, event.patient_ids)
            forged.append({"s": event.chain_seq, "a": event.action, "p": event.prev_hash, "h": prev})
        db.session.rollback()
    finally:
        app.config["AUDIT_HMAC_KEY"] = real_key
    for row in forged:
        _without_triggers("UPDATE audit_events SET action = :a, prev_hash = :p, hash = :h WHERE chain_seq = :s", **row)
    _without_triggers("UPDATE audit_chain_head SET last_hash = :h", h=forged[-1]["h"])
    result = verify(app)
    assert result.exit_code == 1 and f"event {seq}" in result.output and "contents do not match" in result.output


def test_the_chain_head_only_moves_forward(app, chain):
    with pytest.raises(sa.exc.DatabaseError):
        with db.session.begin_nested():
            db.session.execute(sa.text("UPDATE audit_chain_head SET last_seq = last_seq - 1"))
    with pytest.raises(sa.exc.DatabaseError):
        with db.session.begin_nested():
            db.session.execute(sa.text("DELETE FROM audit_chain_head"))


def test_the_patients_of_an_event_cannot_be_changed_before_or_after_it_is_sealed(app, ctx):
    """They are in the event's own row: nobody adds one to it, drops one or seals it with others."""
    import uuid

    from backend.audit.models import AuditEvent

    audit_service.record("patient.read", patient_ids=[uuid.uuid4()])
    unit_of_work.commit()
    seq = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq)))
    emptied = "UPDATE audit_events SET patient_ids = NULL WHERE seq = :seq"
    sealed_emptied = ("UPDATE audit_events SET patient_ids = NULL, chain_seq = 999999, prev_hash = :h, hash = :h "
                      "WHERE seq = :seq")
    for statement in (emptied, sealed_emptied):
        with pytest.raises(sa.exc.DatabaseError):
            with db.session.begin_nested():
                db.session.execute(sa.text(statement), {"seq": seq, "h": "0" * 64})
    assert seal_batches_and_commit() >= 1  # and indexed by patient
    for statement in (emptied, "UPDATE audit_patient_index SET patient_id = patient_id",
                      "DELETE FROM audit_patient_index"):
        with pytest.raises(sa.exc.DatabaseError):
            with db.session.begin_nested():
                db.session.execute(sa.text(statement), {"seq": seq})
    assert db.session.scalar(sa.select(AuditEvent.patient_ids).where(AuditEvent.seq == seq)) != []


def test_verify_holds_while_events_are_being_written(live_app):
    """verify reads up to the head it saw first, so a busy system, its sequencer sealing as it
    goes, never looks broken."""
    import threading

    from backend import clock
    from backend.audit import jobs as audit_jobs
    from tests.support import make_user

    user = make_user(live_app)
    stop = threading.Event()

    def sign_in_repeatedly():
        client = live_app.test_client()
        while not stop.is_set():
            client.post("/api/v1/auth/tokens", json={"username": user.username, "password": user.password})
            clock.run_job(live_app, audit_jobs.seal_audit_trail)

    writer = threading.Thread(target=sign_in_repeatedly)
    writer.start()
    try:
        outcomes = [verify(live_app) for _ in range(25)]
    finally:
        stop.set()
        writer.join()
    assert [r.exit_code for r in outcomes] == [0] * 25, [r.output for r in outcomes]


def test_anchors_recorded_outside_catch_a_cut_tail_and_a_rewrite(app, chain, json_log):
    from backend.audit.jobs import log_chain_head

    log_chain_head()
    line = next(entry for entry in json_log.lines() if entry["msg"] == "audit chain head")
    anchor = f"{line['audit_seq']}:{line['audit_hash']}"
    assert app.test_cli_runner().invoke(args=["audit", "verify", "--anchor", anchor]).exit_code == 0
    wrong = f"{line['audit_seq']}:{'0' * 64}"
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--anchor", wrong])
    assert result.exit_code == 1 and "anchor" in result.output
    beyond = f"{line['audit_seq'] + 5}:{'0' * 64}"
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--anchor", beyond])
    assert result.exit_code == 1 and "cut short" in result.output
    assert (f"the chain ends at event {line['audit_seq']}, but an anchor was recorded at event "
            f"{line['audit_seq'] + 5}") in result.output


def _saved_log(tmp_path, *lines: str) -> str:
    """A log as IT would save it from the log store, one line each."""
    path = tmp_path / "clock.log"
    path.write_text("".join(line.rstrip("\n") + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _anchor_lines(json_log) -> list[str]:
    return [line for line in json_log.text().splitlines() if '"audit chain head"' in line]


def test_verify_takes_every_anchor_from_the_clocks_saved_log(app, chain, json_log, tmp_path):
    from backend.audit.jobs import log_chain_head

    log_chain_head()
    audit_service.record("test.event", details={"n": 5})
    unit_of_work.commit()
    seal_batches_and_commit()
    log_chain_head()
    first, second = _anchor_lines(json_log)
    log = _saved_log(tmp_path, "clock started (not JSON)", '{"msg": "heartbeat", "request_id": null}', first,
                     f"2026-12-03T10:10:00+00:00 app[clock.1]: {second}")  # a drain's prefix
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--anchors-from", log])
    assert result.exit_code == 0, result.output
    assert f"anchors: 2 matched, the latest at event {json.loads(second)['audit_seq']}" in result.output


def test_anchors_logged_after_a_backup_started_are_left_out_with_logged_before(app, chain, json_log, tmp_path):
    from backend.audit.jobs import log_chain_head

    log_chain_head()
    (line,) = _anchor_lines(json_log)
    anchor = json.loads(line)
    logged = dt.datetime.fromisoformat(anchor["ts"])
    later = {**anchor, "ts": (logged + dt.timedelta(minutes=10)).isoformat(), "audit_seq": anchor["audit_seq"] + 3,
             "audit_hash": "a" * 64}  # the clock went on after the backup began
    log = _saved_log(tmp_path, line, json.dumps(later))
    backup_started = (logged + dt.timedelta(minutes=5)).strftime("%Y%m%dT%H%M%SZ")
    whole = app.test_cli_runner().invoke(args=["audit", "verify", "--anchors-from", log])
    assert whole.exit_code == 1 and "cut short" in whole.output
    before = app.test_cli_runner().invoke(args=["audit", "verify", "--anchors-from", log,
                                                "--logged-before", backup_started])
    assert before.exit_code == 0, before.output
    assert f"anchors: 1 matched, the latest at event {anchor['audit_seq']}" in before.output


def test_verify_refuses_a_log_without_anchors_rather_than_passing_unanchored(app, chain, json_log, tmp_path):
    from backend.audit.jobs import log_chain_head

    runner = app.test_cli_runner()
    empty = _saved_log(tmp_path, '{"msg": "clock started", "request_id": null}')
    result = runner.invoke(args=["audit", "verify", "--anchors-from", empty])
    assert result.exit_code == 2 and "no 'audit chain head' lines" in result.output
    log_chain_head()
    log = _saved_log(tmp_path, *_anchor_lines(json_log))
    result = runner.invoke(args=["audit", "verify", "--anchors-from", log, "--logged-before", "2000-01-01T00:00Z"])
    assert result.exit_code == 2 and "no 'audit chain head' lines logged before 2000-01-01" in result.output
    result = runner.invoke(args=["audit", "verify", "--anchors-from", log, "--logged-before", "2026-12-03 02:00"])
    assert result.exit_code == 2 and "offset" in result.output


def test_a_log_giving_two_hashes_for_one_event_fails_verify(app, chain, json_log, tmp_path):
    """The clock saw event N with one hash and later with another: a rewrite, or a restore
    from an older backup, happened in between — neither anchor can be trusted blindly."""
    from backend.audit.jobs import log_chain_head

    log_chain_head()
    (line,) = _anchor_lines(json_log)
    other = {**json.loads(line), "audit_hash": "b" * 64}
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--anchors-from",
                                                _saved_log(tmp_path, line, json.dumps(other))])
    assert result.exit_code == 1
    assert f"two different hashes for event {other['audit_seq']} (line 1 and line 2)" in result.output


def test_a_patient_missing_from_the_index_by_patient_fails_verify(app, ctx):
    """The index by patient is what a patient's access history reads: an entry removed from it
    would hide an access without touching a hash, so verify compares it with the events."""
    import uuid

    from backend.audit.models import AuditPatientIndex

    hidden = uuid.uuid4()
    audit_service.record("patient.read", patient_ids=[uuid.uuid4(), hidden])
    unit_of_work.commit()
    seal_batches_and_commit()
    assert verify(app).exit_code == 0
    if db.engine.dialect.name == "postgresql":
        db.session.execute(sa.text("ALTER TABLE audit_patient_index DISABLE TRIGGER audit_patient_index_append_only"))
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_patient_index_no_delete"))
    db.session.execute(sa.delete(AuditPatientIndex).where(AuditPatientIndex.patient_id == hidden))
    db.session.commit()
    result = verify(app)
    assert result.exit_code == 1 and "the index by patient does not match" in result.output
    assert "1 (patient, event) pairs missing from it or extra" in result.output


def test_an_index_entry_naming_an_event_that_does_not_exist_fails_verify(app, ctx):
    """The index by patient has no foreign key (it is derived from the events' patients): an
    entry pointing at no event would credit a patient with an access nobody made."""
    import uuid

    from backend.audit.models import AuditPatientIndex

    audit_service.record("patient.read", patient_ids=[uuid.uuid4()])
    unit_of_work.commit()
    seal_batches_and_commit()
    assert verify(app).exit_code == 0
    no_event = db.session.scalar(sa.select(sa.func.max(AuditPatientIndex.event_seq))) + 1000
    db.session.execute(sa.insert(AuditPatientIndex).values(patient_id=uuid.uuid4(), event_seq=no_event))
    db.session.commit()
    result = verify(app)
    assert result.exit_code == 1 and "the index by patient does not match" in result.output
    assert "1 (patient, event) pairs missing from it or extra" in result.output


def test_on_sqlite_patients_rewritten_in_a_form_bridgeline_never_writes_fail_verify(app, ctx):
    """SQLite keeps an event's patients as JSON text, read by Python for the hash and by SQLite
    for the index and a patient's history. Rewritten by hand as an object with a repeated key,
    Python reads the one patient the hash covers and SQLite two: with an index entry added for
    the second, the pairs would match and only the text's form gives it away."""
    import uuid

    from backend.audit.models import AuditEvent, AuditPatientIndex

    if db.engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL keeps them as uuid[], which has one form")
    read, added = uuid.uuid4(), uuid.uuid4()
    audit_service.record("patient.read", patient_ids=[read])
    unit_of_work.commit()
    seal_batches_and_commit()
    assert verify(app).exit_code == 0
    seq = db.session.scalar(sa.select(sa.func.max(AuditEvent.seq)))
    db.session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
    db.session.execute(sa.text("UPDATE audit_events SET patient_ids = :text WHERE seq = :seq"),
                       {"text": f'{{"{read.hex}":"{read.hex}","{read.hex}":"{added.hex}"}}', "seq": seq})
    db.session.execute(sa.insert(AuditPatientIndex).values(patient_id=added, event_seq=seq))
    db.session.commit()
    assert db.session.scalar(sa.select(AuditEvent.patient_ids).where(AuditEvent.seq == seq)) == [read]
    result = verify(app)
    assert result.exit_code == 1 and "1 sealed events hold their patients in a form" in result.output
