"""The report's stored facts follow every write: through the API, through bulk updates that
bypass the ORM, and to a patient; recounted whole when the feed no longer covers them or their
definitions change. On a live database (real commits), as in production: a report never sees
writes of a transaction still running, and here nothing else would be committed."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from backend import unit_of_work
from backend.auth.models import Role
from backend.cases.models import Encounter, Patient, SmsStatus
from backend.extensions import db
from backend.outreach.models import Message
from backend.reports import facts, refresh, service
from backend.reports.models import EpisodeFacts, HandoffFacts, RefreshState, TextFacts
from backend.sync.models import Change
from tests.reports.cohort import UTC, Cohort
from tests.support import counted_statements, make_user

H, D = dt.timedelta(hours=1), dt.timedelta(days=1)
T = dt.datetime(2025, 1, 10, 15, 0, tzinfo=UTC)
JANUARY = {"start": dt.date(2025, 1, 1), "end": dt.date(2025, 1, 31), "now": dt.datetime(2025, 7, 1, tzinfo=UTC)}


@pytest.fixture
def live(live_app):
    coach, nurse = make_user(live_app, role=Role.COACH), make_user(live_app, role=Role.ED_NURSE)
    clinic = make_user(live_app, role=Role.CLINIC_STAFF)
    token = live_app.test_client().post("/api/v1/auth/tokens", json={
        "username": clinic.username, "password": clinic.password}).get_json()["token"]
    with live_app.app_context():
        yield Cohort(nurse_id=nurse.id, coach_id=coach.id), {"Authorization": f"Bearer {token}"}


def report() -> dict:
    measures = service.outcomes(**JANUARY)["measures"]
    unit_of_work.commit()
    return measures


def figures(measures: dict, key: str) -> tuple[int, int]:
    return measures[key]["numerator"], measures[key]["denominator"]


def stored_facts() -> dict[str, set]:
    return {table.__tablename__: set(db.session.execute(sa.select(table.__table__)).all())
            for table in (EpisodeFacts, HandoffFacts, TextFacts)}


def test_a_report_counts_every_write_committed_since_the_last_refresh(live):
    cohort, _ = live
    episode = cohort.episode(T)
    cohort.text(episode, status="sent", sent_at=T + H)
    unit_of_work.commit()
    before = report()
    assert figures(before, "contacted_24h") == (0, 1)
    assert figures(before, "texts_delivered") == (0, 1)  # no delivery report, long ago
    assert figures(before, "opted_out") == (0, 1)

    cohort.contact(episode, T + 2 * H)  # through the ORM
    db.session.execute(sa.update(Message).values(status="delivered"))  # as the dispatcher does: no ORM
    unit_of_work.commit()
    after = report()
    assert figures(after, "contacted_24h") == (1, 1)
    assert figures(after, "texts_delivered") == (1, 1)

    db.session.execute(sa.update(Patient).where(Patient.id == episode.patient_id)  # the patient, not the episode
                       .values(sms_status=SmsStatus.OPTED_OUT, sms_status_at=T + D))
    unit_of_work.commit()
    assert figures(report(), "opted_out") == (1, 1)


def test_facts_kept_up_by_refreshes_equal_facts_counted_afresh(live):
    cohort, _ = live
    first = cohort.episode(T)
    cohort.handoff(first, to_level="transition_clinic", method="warm_phone", accept_by=T + D, arrive_by=T + 3 * D)
    unit_of_work.commit()
    refresh.refresh()
    unit_of_work.commit()
    second = cohort.episode(T + D)
    cohort.visit(first, T + 2 * D)
    cohort.visit(second, T + 3 * D)
    cohort.text(second, status="failed", sent_at=T + D + H)
    unit_of_work.commit()
    refresh.refresh()
    unit_of_work.commit()
    kept_up = stored_facts()
    refresh.refresh(full=True)
    unit_of_work.commit()
    assert stored_facts() == kept_up
    assert [len(rows) for rows in kept_up.values()] == [2, 1, 1]


@pytest.mark.parametrize("stale", ["older than the feed keeps", "definitions changed"])
def test_facts_are_counted_afresh_when_the_feed_cannot_bring_them_up_to_date(live, stale):
    cohort, _ = live
    episode = cohort.episode(T)
    unit_of_work.commit()
    assert figures(report(), "contacted_24h") == (0, 1)
    cohort.contact(episode, T + H)
    state = db.session.get(RefreshState, refresh.STATE_ID)
    if stale == "older than the feed keeps":
        db.session.execute(sa.delete(Change))  # purged with everything since the last refresh
        state.refreshed_at -= dt.timedelta(days=31)
    else:
        state.txid = state.seq = 2**62  # past the whole feed: nothing looks new, yet all must be recounted
        state.fingerprint = "an earlier definition"
    unit_of_work.commit()
    assert figures(report(), "contacted_24h") == (1, 1)


def test_the_reports_statements_do_not_grow_with_the_number_of_episodes(live_app, live):
    cohort, clinic = live
    query = {"from": "2025-01-01", "to": "2025-01-31"}
    client = live_app.test_client()
    assert client.get("/api/v1/reports/outcomes", headers=clinic, query_string=query).status_code == 200
    costs, sizes = [], []
    for size in (1, 12):
        for _ in range(size):
            episode = cohort.episode(T)
            cohort.contact(episode, T + H)
            cohort.visit(episode, T + D)
            cohort.text(episode, status="delivered", sent_at=T + H)
            cohort.handoff(episode, to_level="transition_clinic", method="warm_phone", accept_by=T + D,
                           arrive_by=T + 3 * D, events=[("accepted", T + H)])
        unit_of_work.commit()
        with counted_statements(db.engine) as statements:
            response = client.get("/api/v1/reports/outcomes", headers=clinic, query_string=query)
        costs.append(len(statements))
        sizes.append(response.get_json()["cohort"]["episodes"])
    assert sizes == [1, 13]
    assert costs[0] == costs[1], costs


def test_a_change_of_definition_is_seen_in_its_constants_too(app, monkeypatch):
    with app.app_context():
        before = refresh.fingerprint()
        monkeypatch.setattr(facts, "FOLLOW_UP_ENCOUNTERS", ("in_person",))
        monkeypatch.setattr(refresh, "_fingerprints", {})
        assert refresh.fingerprint() != before


def test_a_text_moved_to_another_episode_in_sql_follows_and_a_recount_mends_the_rest(live_app, live):
    cohort, _ = live
    first, second = cohort.episode(T), cohort.episode(T)
    cohort.text(first, status="delivered", sent_at=T + H)
    cohort.contact(first, T + H)
    unit_of_work.commit()
    assert figures(report(), "contacted_24h") == (1, 2)
    db.session.execute(sa.update(Message).values(episode_id=second.id))  # a fix made in SQL
    db.session.execute(sa.update(Encounter).values(episode_id=second.id))
    unit_of_work.commit()
    measures_ = report()  # no duplicate key: the text's facts move with it
    assert figures(measures_, "texts_delivered") == (1, 1)
    assert db.session.scalars(sa.select(TextFacts.episode_id)).all() == [second.id]
    assert figures(measures_, "contacted_24h") == (2, 2)  # the first episode's own facts are stale…
    result = live_app.test_cli_runner().invoke(args=["reports", "recount"])
    assert result.exit_code == 0, result.output
    assert figures(report(), "contacted_24h") == (1, 2)  # …until recounted


def test_a_report_counts_a_commit_even_while_an_older_transaction_is_still_open(live):
    cohort, _ = live
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writing transaction at a time")
    episode = cohort.episode(T)
    unit_of_work.commit()
    assert figures(report(), "contacted_24h") == (0, 1)
    with db.engine.connect() as older:
        older.begin()
        older.exec_driver_sql("SELECT pg_current_xact_id()")  # a transaction id, older than what follows
        cohort.contact(episode, T + H)
        unit_of_work.commit()
        assert figures(report(), "contacted_24h") == (1, 1)
        older.rollback()
    assert figures(report(), "contacted_24h") == (1, 1)
