"""The admin's Users screen (console.md "Who does what"; privacy.md "Access"): accounts made and
changed through the same service as `/api/v1/users`, the two-person rule shown, and no screen of
the admin's open to anyone else."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from backend.audit.models import AuditEvent
from backend.auth.models import Access, Role, User
from backend.extensions import db
from tests.console.conftest import ConsoleClient
from tests.support import ApiClient, counted_statements, make_user

ADMIN_PAGES = ["/console/users", "/console/programs", "/console/programs/new", "/console/templates",
               "/console/audit"]


def account(app, username: str) -> User:
    with app.app_context():
        user = db.session.scalar(sa.select(User).where(User.username == username))
        db.session.expunge_all()
        return user


def actions_on(app, user_id) -> list[tuple[str, str | None]]:
    with app.app_context():
        return [(e.action, e.actor_username) for e in db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.resource_id == str(user_id)).order_by(AuditEvent.seq))]


def api_signed_in(app, username: str, password: str) -> ApiClient:
    api = ApiClient(app.test_client())
    api.sign_in(username, password)
    return api


@pytest.mark.parametrize("role", [Role.COACH, Role.ED_NURSE, Role.CLINIC_STAFF])
def test_no_admin_screen_opens_to_a_clinical_role(console, role):
    person = console(role)
    for path in ADMIN_PAGES:
        response = person.get(path)
        assert response.status_code == 403 and response.mimetype == "text/html", path
        assert "request id" in response.get_data(as_text=True)
    page = person.get("/console/patients/find").get_data(as_text=True)
    assert 'href="/console/users"' not in page and 'href="/console/audit"' not in page


def test_a_clinical_role_cannot_create_a_user_even_with_a_valid_form(app, console):
    staff = console(Role.CLINIC_STAFF)
    response = staff.post("/console/users", {"username": "sneaky.one", "display_name": "Sneaky", "role": "admin",
                                             "password": "a long enough password"})
    assert response.status_code == 403
    assert account(app, "sneaky.one") is None


def test_an_admin_starts_on_users_with_the_admin_screens_in_the_menu(console):
    admin = console(Role.ADMIN)
    response = admin.get("/console/", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and re.search(r"<h1>Users</h1>", page)
    for link in ("/console/users", "/console/programs", "/console/templates", "/console/audit"):
        assert f'href="{link}"' in page
    assert 'href="/console/patients/find"' not in page  # an admin is not a clinician
    assert re.search(r'href="/console/users" aria-current="page">Users', page)


def test_a_clinical_account_made_by_an_admin_shows_as_access_pending_until_clinic_staff_approve(
        app, console, make_client):
    admin = console(Role.ADMIN)
    created = admin.post("/console/users", {"username": "Nurse.Okafor", "display_name": "Ada Okafor",
                                            "role": "ed_nurse", "password": "a long enough password"})
    assert created.status_code == 302, created.get_data(as_text=True)
    person = account(app, "nurse.okafor")  # stored lower-case, as the API stores it
    assert person.role == Role.ED_NURSE and person.access == Access.PENDING
    assert person.access_granted_by_id == admin.user.id
    assert created.headers["Location"] == f"/console/users/{person.id}"

    page = admin.get(created.headers["Location"]).get_data(as_text=True)
    assert "Access pending." in page and "waits for a clinic-staff member" in page
    listing = admin.get("/console/users").get_data(as_text=True)
    pending = listing.split('id="pending-heading"')[1].split('id="list-heading"')[0]
    assert "Ada Okafor" in pending and "ED nurse" in pending and "Test Person" in pending  # the granting admin
    assert "Access pending" in listing.split('id="list-heading"')[1]
    assert actions_on(app, person.id) == [("user.create", admin.user.username),
                                          ("user.access_granted", admin.user.username)]

    approver = make_client(Role.CLINIC_STAFF, display_name="Bea Approver")
    assert approver.post(f"/api/v1/users/{person.id}/access-approval").status_code == 200
    page = admin.get(f"/console/users/{person.id}").get_data(as_text=True)
    assert "Access pending." not in page and "Approved by Bea Approver" in page
    assert "Ada Okafor" not in admin.get("/console/users").get_data(as_text=True).split(
        'id="pending-heading"')[1].split('id="list-heading"')[0]


def test_an_admin_account_is_in_force_at_once(app, console):
    admin = console(Role.ADMIN)
    admin.post("/console/users", {"username": "second.admin", "display_name": "Second Admin", "role": "admin",
                                  "password": "a long enough password"})
    assert account(app, "second.admin").access == Access.ACTIVE


def test_a_bad_new_user_comes_back_with_messages_by_field_and_never_the_password(app, console):
    admin = console(Role.ADMIN)
    response = admin.post("/console/users", {"username": "x", "display_name": "Kept Name", "role": "coach",
                                             "password": "short"})
    page = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'id="username-error">[^<]+', page) and re.search(r'id="password-error">[^<]+', page)
    assert 'value="x"' in page and 'value="Kept Name"' in page
    assert "short" not in page  # a password is never sent back
    assert account(app, "x") is None


def test_a_taken_username_is_refused_by_its_field(app, console):
    admin = console(Role.ADMIN)
    taken = make_user(app, role=Role.COACH, username="taken.name")
    response = admin.post("/console/users", {"username": "Taken.Name", "display_name": "Someone Else",
                                             "role": "coach", "password": "a long enough password"})
    assert response.status_code == 409
    assert re.search(r'id="username-error">[^<]*Already taken', response.get_data(as_text=True))
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(
            User.username == "taken.name")) == 1
        assert db.session.get(User, taken.id).display_name == "Test Person"


def test_a_role_change_signs_the_person_out_and_a_clinical_role_waits_for_approval(app, console):
    admin = console(Role.ADMIN)
    person = make_user(app, role=Role.ADMIN)
    phone = api_signed_in(app, person.username, person.password)
    response = admin.post(f"/console/users/{person.id}/role", {"role": "clinic_staff"})
    assert response.status_code == 302
    assert phone.get("/api/v1/me").status_code == 401
    changed = account(app, person.username)
    assert changed.role == Role.CLINIC_STAFF and changed.access == Access.PENDING
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "The role is now Clinic staff." in page and "Access pending." in page


def test_a_new_password_works_the_old_one_stops_and_a_short_one_is_refused_by_its_field(app, console):
    admin = console(Role.ADMIN)
    person = make_user(app, role=Role.COACH)
    phone = api_signed_in(app, person.username, person.password)
    short = admin.post(f"/console/users/{person.id}/password", {"password": "short"})
    assert short.status_code == 422 and re.search(r'id="password-error">[^<]+', short.get_data(as_text=True))
    assert phone.get("/api/v1/me").status_code == 200  # nothing changed

    assert admin.post(f"/console/users/{person.id}/password", {"password": "a brand new passphrase"}).status_code \
        == 302
    assert phone.get("/api/v1/me").status_code == 401
    anonymous = ApiClient(app.test_client())
    assert anonymous.post("/api/v1/auth/tokens", json={"username": person.username, "password": person.password,
                                                       "device_name": "x"}).status_code == 401
    api_signed_in(app, person.username, "a brand new passphrase")
    assert account(app, person.username).access == Access.PENDING  # an admin could sign in with it


def test_ending_all_devices_signs_the_person_out_everywhere_audited_as_the_api(app, console):
    admin = console(Role.ADMIN)
    person = make_user(app, role=Role.COACH)
    phones = [api_signed_in(app, person.username, person.password) for _ in range(2)]
    page = admin.get(f"/console/users/{person.id}").get_data(as_text=True)
    assert "Signed in on 2 devices." in page
    response = admin.post(f"/console/users/{person.id}/devices/end")
    assert response.status_code == 302
    assert all(phone.get("/api/v1/me").status_code == 401 for phone in phones)
    assert "Ended 2 device sessions." in admin.get(response.headers["Location"]).get_data(as_text=True)
    with app.app_context():
        event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "auth.sessions_revoked",
                                                              AuditEvent.resource_id == str(person.id)))
        assert event.actor_id == admin.user.id and event.details == {"reason": "revoked_by_admin", "count": 2}


def test_deactivating_ends_every_session_and_reactivating_a_clinician_waits_for_approval(app, console):
    admin = console(Role.ADMIN)
    person = make_user(app, role=Role.ED_NURSE)
    phone = api_signed_in(app, person.username, person.password)
    assert admin.post(f"/console/users/{person.id}/deactivate").status_code == 302
    assert phone.get("/api/v1/me").status_code == 401
    page = admin.get(f"/console/users/{person.id}").get_data(as_text=True)
    assert "Deactivated on" in page and "Reactivate user" in page
    assert "Deactivated" in admin.get("/console/users").get_data(as_text=True)

    assert admin.post(f"/console/users/{person.id}/reactivate").status_code == 302
    back = account(app, person.username)
    assert back.active and back.access == Access.PENDING
    api_signed_in(app, person.username, person.password)


def test_the_last_admin_cannot_deactivate_themself_and_is_told_why(app, console):
    with app.app_context():  # other tests' admins are rolled back; make sure this one is alone
        assert db.session.scalar(sa.select(sa.func.count()).select_from(User).where(User.role == Role.ADMIN)) == 0
    admin = console(Role.ADMIN)
    response = admin.post(f"/console/users/{admin.user.id}/deactivate")
    assert response.status_code == 409
    assert "last active admin" in response.get_data(as_text=True)
    assert account(app, admin.user.username).active
    assert admin.get("/console/users").status_code == 200  # still signed in


def test_a_change_without_the_csrf_token_changes_nothing(app, console):
    admin = console(Role.ADMIN)
    person = make_user(app, role=Role.COACH)
    response = admin.post(f"/console/users/{person.id}/deactivate", csrf=False)
    assert response.status_code == 400 and "Nothing was saved" in response.get_data(as_text=True)
    assert account(app, person.username).active


def test_the_users_page_takes_as_many_queries_for_many_pending_grants_as_for_one(app, console):
    admin = console(Role.ADMIN)

    def grant(n: int) -> None:
        for _ in range(n):
            granter = make_user(app, role=Role.ADMIN)
            browser = ConsoleClient(app.test_client(), granter)
            browser.sign_in(granter.username, granter.password)
            browser.get("/console/users")
            assert browser.post("/console/users", {"username": f"n.{granter.username}", "display_name": "N",
                                                   "role": "coach", "password": "a long enough password"}
                                ).status_code == 302

    def statements() -> int:
        with counted_statements(_engine(app)) as sent:
            assert admin.get("/console/users").status_code == 200
        return len(sent)

    grant(1)
    few = statements()
    grant(6)
    assert statements() == few


def _engine(app):
    with app.app_context():
        return db.engine


def test_accounts_are_linked_by_id_never_by_name(app, console):
    admin = console(Role.ADMIN)
    admin.post("/console/users", {"username": "link.check", "display_name": "Linda Checkley", "role": "coach",
                                  "password": "a long enough password"})
    person = account(app, "link.check")
    for path in ("/console/users", f"/console/users/{person.id}"):
        urls = re.findall(r'(?:href|action)="([^"]+)"', admin.get(path).get_data(as_text=True))
        assert f"/console/users/{person.id}" in " ".join(urls)
        assert not any("Linda" in url or "link.check" in url for url in urls)
