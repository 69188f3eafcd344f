"""The phone's sync: first sync, incremental changes, tombstones when an episode leaves a scope,
and a cursor that a late commit cannot get behind."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from backend import unit_of_work
from backend.auth.models import Role
from backend.cases.models import Appointment, Encounter, Task
from backend.extensions import db
from backend.outreach import dispatcher
from backend.outreach.models import Message
from backend.pagination import decode_cursor, encode_cursor
from backend.sync import service
from backend.sync.models import Change
from tests.cases.conftest import ago, ahead
from tests.support import counted_statements

TYPES = {"patients": "patient", "episodes": "episode", "encounters": "encounter", "tasks": "task",
         "appointments": "appointment", "handoffs": "handoff", "naloxone": "naloxone", "medications": "medication",
         "messages": "message"}


class Phone:
    """A phone's local copy, kept the way mobile_api_spec/README.md tells the phone team."""

    def __init__(self, client) -> None:
        self.client = client
        self.cursor: str | None = None
        self.records: dict[tuple[str, str], dict] = {}

    def sync(self) -> list[dict]:
        """Sync until `has_more` is false; the pages received."""
        pages = []
        while True:
            response = self.client.get("/api/v1/sync", query_string={"cursor": self.cursor} if self.cursor else {})
            assert response.status_code == 200, response.get_json()
            page = response.get_json()
            changed = {(TYPES[key], record["id"]) for key, items in page["changes"].items() for record in items}
            removed = {(item["type"], item["id"]) for item in page["removed"]}
            assert not changed & removed, "a record is never both changed and removed"
            for key in removed:
                self.records.pop(key, None)
            for key, items in page["changes"].items():
                for record in items:
                    self.records[(TYPES[key], record["id"])] = record
            self.cursor = page["cursor"]
            pages.append(page)
            if not page["has_more"]:
                return pages

    def ids(self, kind: str) -> set[str]:
        return {record_id for (type_, record_id) in self.records if type_ == kind}


def changed_ids(pages: list[dict], key: str) -> set[str]:
    return {record["id"] for page in pages for record in page["changes"][key]}


def removed_ids(pages: list[dict], kind: str) -> set[str]:
    return {item["id"] for page in pages for item in page["removed"] if item["type"] == kind}


@pytest.fixture
def worked_episode(clinic, open_episode, send):
    """`worked_episode(coach)` → (episode, {kind: record id}): an episode with one record of each
    kind a coach's phone keeps."""

    def factory(coach):
        episode = open_episode(coach=coach)
        url = f"/api/v1/episodes/{episode['id']}"
        clinic.put(f"/api/v1/patients/{episode['patient_id']}/sms-consent", json={"status": "opted_in",
                                                                                  "method": "verbal"})
        records = {
            "encounter": coach.post(f"{url}/encounters", json={"kind": "in_person", "occurred_at": ago(hours=1)}),
            "task": coach.post(f"{url}/tasks", json={"title": "Call back", "due_at": ahead(days=1)}),
            "appointment": coach.post(f"{url}/appointments", json={"kind": "transition_clinic",
                                                                   "starts_at": ahead(days=2)}),
            "handoff": send(episode),
            "naloxone": coach.post(f"{url}/naloxone", json={
                "distributed_at": ago(hours=2), "recipient": "patient", "product": "nasal_4mg", "doses": 2,
                "training_given": True, "setting": "emergency_department"}),
            "medication": coach.post(f"{url}/medications", json={
                "medication": "buprenorphine", "kind": "bridge_prescription", "source": "emergency_department",
                "started_on": episode["arrived_at"][:10], "days_supplied": 7}),
            "message": coach.post(f"/api/v1/patients/{episode['patient_id']}/messages",
                                  json={"body": "Checking in, how are you doing?"}),
        }
        for response in records.values():
            assert response.status_code in (201, 202), response.get_json()  # a text is queued: 202
        return episode, {kind: response.get_json()["id"] for kind, response in records.items()}

    return factory


def test_a_first_sync_holds_the_coachs_open_episodes_with_all_their_records_and_nothing_else(
        make_client, clinic, open_episode, worked_episode):
    coach, other = make_client(Role.COACH), make_client(Role.COACH)
    episode, records = worked_episode(coach)
    closed = open_episode(coach=coach)
    clinic.post(f"/api/v1/episodes/{closed['id']}/close", json={"reason": "moved_away"})
    others = open_episode(coach=other)

    phone = Phone(coach)
    phone.sync()

    assert phone.ids("episode") == {episode["id"]}
    assert phone.ids("patient") == {episode["patient_id"]}
    for kind, record_id in records.items():
        assert record_id in phone.ids(kind), kind
    assert {record["episode_id"] for (kind, _), record in phone.records.items()
            if kind not in ("patient", "episode")} == {episode["id"]}
    assert others["id"] not in phone.ids("episode") and closed["id"] not in phone.ids("episode")
    assert phone.records[("episode", episode["id"])]["coach_id"] == str(coach.user.id)


def test_a_first_sync_sends_the_work_ahead_and_the_past_week_and_leaves_older_history_online(
        app, coach, clinic, open_episode):
    episode = open_episode(coach=coach)
    url = f"/api/v1/episodes/{episode['id']}"
    clinic.put(f"/api/v1/patients/{episode['patient_id']}/sms-consent", json={"status": "opted_in",
                                                                              "method": "verbal"})

    def made(response):
        assert response.status_code in (201, 202), response.get_json()
        return response.get_json()["id"]

    recent_visit = made(coach.post(f"{url}/encounters", json={"kind": "phone", "occurred_at": ago(days=6)}))
    old_visit = made(coach.post(f"{url}/encounters", json={"kind": "phone", "occurred_at": ago(days=9)}))
    overdue_task = made(coach.post(f"{url}/tasks", json={"title": "Call back", "due_at": ago(days=20)}))
    old_done_task = made(coach.post(f"{url}/tasks", json={"title": "Find a bed", "due_at": ago(days=12)}))
    assert coach.patch(f"/api/v1/tasks/{old_done_task}", json={"status": "done"},
                       headers={"If-Match": '"1"'}).status_code == 200
    next_visit = made(coach.post(f"{url}/appointments", json={"kind": "transition_clinic",
                                                              "starts_at": ahead(days=3)}))
    old_visit_booked = made(coach.post(f"{url}/appointments", json={"kind": "transition_clinic",
                                                                    "starts_at": ago(days=10)}))
    old_text = made(coach.post(f"/api/v1/patients/{episode['patient_id']}/messages", json={"body": "Hi there"}))
    old_reply, unread_reply = uuid.uuid4(), uuid.uuid4()
    eight_days_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=8)
    with app.app_context():  # history written a while ago: backdate what the API stamped now
        for model, record_id in ((Encounter, old_visit), (Task, old_done_task), (Appointment, old_visit_booked),
                                 (Message, old_text)):
            columns = {"created_at": eight_days_ago} | (
                {"updated_at": eight_days_ago} if hasattr(model, "updated_at") else {}) | (
                {"send_at": eight_days_ago} if model is Message else {})
            db.session.execute(sa.update(model).where(model.id == uuid.UUID(record_id)).values(**columns))
        for message_id, read_at in ((old_reply, eight_days_ago), (unread_reply, None)):
            db.session.add(Message(id=message_id, patient_id=uuid.UUID(episode["patient_id"]),
                                   episode_id=uuid.UUID(episode["id"]), direction="inbound", kind="reply",
                                   body="ok", status="received", send_at=eight_days_ago, status_at=eight_days_ago,
                                   created_at=eight_days_ago, updated_at=eight_days_ago, read_at=read_at))
        unit_of_work.commit()

    phone = Phone(coach)
    phone.sync()

    assert phone.ids("encounter") == {recent_visit}
    assert phone.ids("task") == {overdue_task}
    assert phone.ids("appointment") == {next_visit}
    assert str(unread_reply) in phone.ids("message")  # besides the texts opting in planned
    assert not {old_text, str(old_reply)} & phone.ids("message")
    online = {item["id"] for path in (f"{url}/encounters", f"{url}/tasks", f"{url}/appointments",
                                      f"/api/v1/patients/{episode['patient_id']}/messages")
              for item in coach.get(path).get_json()["items"]}
    assert {old_visit, old_done_task, old_visit_booked, old_text, str(old_reply)} <= online


def test_an_incremental_sync_sends_what_changed_and_nothing_else(coach, worked_episode):
    episode, records = worked_episode(coach)
    phone = Phone(coach)
    phone.sync()

    nothing = phone.sync()
    assert nothing == [{"cursor": phone.cursor, "has_more": False, "removed": [],
                        "changes": {key: [] for key in TYPES}}]

    task_url = f"/api/v1/tasks/{records['task']}"
    etag = coach.get(task_url).headers["ETag"]
    assert coach.patch(task_url, json={"title": "Call back after lunch"}, headers={"If-Match": etag}).status_code == 200
    pages = phone.sync()
    assert changed_ids(pages, "tasks") == {records["task"]}
    assert all(not page["changes"][key] for page in pages for key in TYPES if key != "tasks")
    assert phone.records[("task", records["task"])]["title"] == "Call back after lunch"


def test_reassigning_an_episode_removes_it_from_the_old_coachs_phone_and_sends_it_whole_to_the_new_one(
        make_client, clinic, worked_episode):
    coach_a, coach_b = make_client(Role.COACH), make_client(Role.COACH)
    episode, records = worked_episode(coach_a)
    phone_a, phone_b = Phone(coach_a), Phone(coach_b)
    phone_a.sync()
    phone_b.sync()
    assert episode["id"] in phone_a.ids("episode") and not phone_b.records

    response = clinic.put(f"/api/v1/episodes/{episode['id']}/coach", json={"coach_id": str(coach_b.user.id)})
    assert response.status_code == 200, response.get_json()

    gone = phone_a.sync()
    assert removed_ids(gone, "episode") == {episode["id"]}
    assert removed_ids(gone, "patient") == {episode["patient_id"]}
    for kind, record_id in records.items():
        assert record_id in removed_ids(gone, kind), kind
    assert phone_a.records == {}

    arrived = phone_b.sync()
    assert changed_ids(arrived, "episodes") == {episode["id"]}
    for kind, record_id in records.items():
        assert record_id in phone_b.ids(kind), kind
    assert removed_ids(arrived, "episode") == set()


def test_closing_an_episode_removes_it_and_its_records_from_every_phone_that_held_it(
        coach, clinic, worked_episode):
    episode, records = worked_episode(coach)
    phones = [Phone(coach), Phone(clinic)]
    for phone in phones:
        phone.sync()
        assert episode["id"] in phone.ids("episode")

    assert coach.post(f"/api/v1/episodes/{episode['id']}/close", json={"reason": "engaged_in_care"}).status_code == 200

    for phone in phones:
        gone = phone.sync()
        assert episode["id"] in removed_ids(gone, "episode")
        assert records["encounter"] in removed_ids(gone, "encounter")
        assert records["naloxone"] in removed_ids(gone, "naloxone")  # tombstones for the new records too
        assert records["medication"] in removed_ids(gone, "medication")
        assert not {("episode", episode["id"]), ("encounter", records["encounter"])} & set(phone.records)
    fresh = Phone(clinic)
    fresh.sync()
    assert episode["id"] not in fresh.ids("episode"), "a first sync sends no closed episode"


def test_an_episode_that_moves_on_from_the_hospital_leaves_an_ed_nurses_phone(
        make_client, clinic, coach, open_episode, send):
    opener, other_nurse = make_client(Role.ED_NURSE), make_client(Role.ED_NURSE)
    episode = open_episode(coach=coach, client=opener)
    coach.post(f"/api/v1/episodes/{episode['id']}/encounters", json={"kind": "in_person", "occurred_at": ago(hours=1)})
    handoff = send(episode, client=opener).get_json()
    phones = {"opener": Phone(opener), "other": Phone(other_nurse)}
    for phone in phones.values():
        phone.sync()
        assert episode["id"] in phone.ids("episode") and handoff["id"] in phone.ids("handoff")
        assert not phone.ids("encounter"), "nurses' phones keep no encounters"

    clinic.post(f"/api/v1/handoffs/{handoff['id']}/accept", json={})
    clinic.post(f"/api/v1/handoffs/{handoff['id']}/complete", json={"arrived_at": ago(minutes=5)})

    gone = phones["other"].sync()
    assert removed_ids(gone, "episode") == {episode["id"]} and removed_ids(gone, "handoff") == {handoff["id"]}
    kept = phones["opener"].sync()  # the nurse who opened it keeps sight of it
    assert episode["id"] in phones["opener"].ids("episode") and not removed_ids(kept, "episode")
    assert phones["opener"].records[("episode", episode["id"])]["level"] == "transition_clinic"


def test_an_admins_phone_holds_no_patient_data(admin, coach, open_episode):
    open_episode(coach=coach)
    phone = Phone(admin)
    phone.sync()
    assert phone.records == {}


def test_a_cursor_the_server_did_not_issue_is_refused(coach):
    response = coach.get("/api/v1/sync", query_string={"cursor": "WzEsMiwiIl0.0000"})
    assert response.status_code == 422
    assert response.headers["Content-Type"] == "application/problem+json"
    assert "cursor" in response.get_json()["errors"]


def test_a_first_sync_comes_in_pages_and_what_changes_meanwhile_comes_next(monkeypatch, coach, open_episode):
    monkeypatch.setattr(service, "EPISODES_PAGE", 2)
    episodes = [open_episode(coach=coach) for _ in range(5)]
    phone = Phone(coach)
    first = phone.client.get("/api/v1/sync").get_json()
    assert first["has_more"] is True and len(first["changes"]["episodes"]) == 2
    phone.cursor = first["cursor"]
    phone.records = {("episode", e["id"]): e for e in first["changes"]["episodes"]}
    sent_first = {e["id"] for e in first["changes"]["episodes"]}
    changed = next(e for e in episodes if e["id"] in sent_first)
    etag = coach.get(f"/api/v1/episodes/{changed['id']}").headers["ETag"]
    assert coach.patch(f"/api/v1/episodes/{changed['id']}", json={"flags": {"recent_overdose": True}},
                       headers={"If-Match": etag}).status_code == 200

    rest = phone.sync()
    assert [page["has_more"] for page in rest] == [True, False]
    assert phone.ids("episode") == {e["id"] for e in episodes}
    assert phone.records[("episode", changed["id"])]["flags"]["recent_overdose"] is False  # not yet
    phone.sync()
    assert phone.records[("episode", changed["id"])]["flags"]["recent_overdose"] is True


def test_texts_moved_along_by_the_dispatcher_reach_the_phone(app, coach, worked_episode):
    """The dispatcher changes texts with bulk UPDATEs, which the ORM never sees: the feed's
    triggers must."""
    _, records = worked_episode(coach)
    phone = Phone(coach)
    phone.sync()
    assert phone.records[("message", records["message"])]["status"] == "queued"
    with app.app_context():
        dispatcher.dispatch_and_commit(now=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=1, hours=1))
        unit_of_work.commit()
    pages = phone.sync()
    assert records["message"] in changed_ids(pages, "messages")
    assert phone.records[("message", records["message"])]["status"] != "queued"


def test_a_phone_that_syncs_along_holds_exactly_what_a_first_sync_would_give(
        make_client, clinic, worked_episode, open_episode, register):
    coach_a, coach_b = make_client(Role.COACH), make_client(Role.COACH)
    phone = Phone(coach_a)
    kept, _ = worked_episode(coach_a)
    moved, _ = worked_episode(coach_a)
    phone.sync()
    back, _ = worked_episode(coach_b)
    steps = [
        lambda: clinic.put(f"/api/v1/episodes/{moved['id']}/coach", json={"coach_id": str(coach_b.user.id)}),
        lambda: clinic.put(f"/api/v1/episodes/{back['id']}/coach", json={"coach_id": str(coach_a.user.id)}),
        lambda: coach_a.post(f"/api/v1/episodes/{kept['id']}/encounters",
                             json={"kind": "phone", "occurred_at": ago(minutes=30)}),
        lambda: clinic.put(f"/api/v1/episodes/{back['id']}/coach", json={"coach_id": str(coach_b.user.id)}),
        lambda: clinic.put(f"/api/v1/episodes/{back['id']}/coach", json={"coach_id": str(coach_a.user.id)}),
        lambda: clinic.post(f"/api/v1/episodes/{kept['id']}/close", json={"reason": "transferred"}),
        lambda: open_episode(coach=coach_a, patient={"id": kept["patient_id"]}),
    ]
    for number, step in enumerate(steps):
        step()
        if number % 2:
            phone.sync()
    phone.sync()
    fresh = Phone(coach_a)
    fresh.sync()
    assert phone.records == fresh.records
    assert moved["id"] not in phone.ids("episode") and back["id"] in phone.ids("episode")
    assert kept["patient_id"] in phone.ids("patient")


def test_the_queries_a_sync_costs_do_not_grow_with_the_caseload(app, make_client, worked_episode):
    costs = {}
    for size in (1, 6):
        coach = make_client(Role.COACH)
        for _ in range(size):
            worked_episode(coach)
        phone = Phone(coach)
        with app.app_context(), counted_statements(db.engine) as first:
            phone.sync()
        with app.app_context(), counted_statements(db.engine) as empty:
            phone.sync()
        costs[size] = (len(first), len(empty))
    assert costs[1] == costs[6], costs


def test_a_change_committed_late_is_delivered_by_the_next_sync_never_skipped(app, coach, worked_episode):
    """Transaction ids are handed out when a write begins, commits land in any order: the
    feed's position must never pass a transaction still running (PostgreSQL)."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        pytest.skip("SQLite runs one writer at a time: commits cannot land out of order")
    _, first = worked_episode(coach)
    _, second = worked_episode(coach)
    phone = Phone(coach)
    phone.sync()

    with app.app_context():
        slow = db.engine.connect()
    try:
        late = slow.begin()
        slow.execute(sa.text("UPDATE tasks SET title = 'written first, committed last', version = version + 1 "
                             "WHERE id = :id"), {"id": first["task"]})
        url = f"/api/v1/tasks/{second['task']}"
        etag = coach.get(url).headers["ETag"]
        assert coach.patch(url, json={"title": "written last, committed first"},
                           headers={"If-Match": etag}).status_code == 200
        phone.sync()  # reads while the first write is still open
        late.commit()
    finally:
        slow.close()
    phone.sync()
    assert phone.records[("task", first["task"])]["title"] == "written first, committed last"
    assert phone.records[("task", second["task"])]["title"] == "written last, committed first"


def test_a_cursor_older_than_the_kept_changes_asks_the_phone_to_start_again(app, coach, open_episode):
    open_episode(coach=coach)
    phone = Phone(coach)
    phone.sync()
    with app.test_request_context():
        txid, seq, after, _ = decode_cursor(phone.cursor, [int, int, str, int])
        stale = dt.datetime.now(dt.timezone.utc) - service.KEEP_CHANGES + dt.timedelta(hours=23)
        old_cursor = encode_cursor([txid, seq, after, int(stale.timestamp())])
    response = coach.get("/api/v1/sync", query_string={"cursor": old_cursor})
    assert response.status_code == 409 and response.get_json()["type"] == "conflict"
    assert "without a cursor" in response.get_json()["detail"]
    assert coach.get("/api/v1/sync", query_string={"cursor": phone.cursor}).status_code == 200


def test_the_feed_forgets_changes_older_than_it_keeps_and_only_those(app, coach, open_episode):
    episode = open_episode(coach=coach)
    with app.app_context():
        def rows():
            return db.session.scalar(sa.select(sa.func.count()).select_from(Change)
                                     .where(Change.episode_id == uuid.UUID(episode["id"])))
        kept = rows()
        assert kept > 0
        service.purge_changes(now=dt.datetime.now(dt.timezone.utc) + service.KEEP_CHANGES - dt.timedelta(hours=1))
        unit_of_work.commit()
        assert rows() == kept
        service.purge_changes(now=dt.datetime.now(dt.timezone.utc) + service.KEEP_CHANGES + dt.timedelta(hours=1))
        unit_of_work.commit()
        assert rows() == 0


def test_every_table_a_phone_keeps_feeds_the_sync(app):
    """A SQLite batch migration rebuilds a table without its triggers: this catches one that was
    not given them back."""
    expected = {"sync_feed_patients_update", "sync_feed_handoff_events_insert"} | {
        f"sync_feed_{table}_{operation}" for table in ("episodes", "encounters", "tasks", "appointments", "handoffs",
                                                       "messages", "naloxone_events", "medication_supplies")
        for operation in ("insert", "update")}
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            names = db.session.scalars(sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")).all()
        else:
            names = db.session.scalars(sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).all()
    assert expected <= set(names)


def test_a_patients_new_phone_number_reaches_the_coachs_phone(coach, clinic, open_episode):
    episode = open_episode(coach=coach)
    phone = Phone(coach)
    phone.sync()
    url = f"/api/v1/patients/{episode['patient_id']}"
    etag = clinic.get(url).headers["ETag"]
    assert clinic.patch(url, json={"phone": "617-555-0188"}, headers={"If-Match": etag}).status_code == 200
    pages = phone.sync()
    assert changed_ids(pages, "patients") == {episode["patient_id"]}
    assert phone.records[("patient", episode["patient_id"])]["phone"] == "+16175550188"
