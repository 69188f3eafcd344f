"""The declarative scope: one rule serves lists and single records."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.models import DeviceSession, User
from backend.auth.scopes import OWN_DEVICE_SESSIONS
from backend.errors import Problem
from backend.extensions import db


def test_a_scope_filters_lists_and_refuses_single_records_outside_it(make_client, ctx):
    alice, bob = make_client(), make_client()
    alice_user, bob_user = db.session.get(User, alice.user.id), db.session.get(User, bob.user.id)
    visible = db.session.scalars(OWN_DEVICE_SESSIONS.where(sa.select(DeviceSession), alice_user)).all()
    assert {s.user_id for s in visible} == {alice.user.id}
    bobs = db.session.scalar(sa.select(DeviceSession).where(DeviceSession.user_id == bob.user.id))
    assert OWN_DEVICE_SESSIONS.load_or_404(bobs.id, bob_user).id == bobs.id
    try:
        OWN_DEVICE_SESSIONS.load_or_404(bobs.id, alice_user)
    except Problem as refused:
        assert refused.code == 404
    else:
        raise AssertionError("alice loaded bob's session")
