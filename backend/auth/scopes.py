"""What each user may see of identity records."""

from __future__ import annotations

import sqlalchemy as sa

from backend.auth.access import Scope
from backend.auth.models import DeviceSession, User

#: A user sees only their own device sessions.
OWN_DEVICE_SESSIONS = Scope(DeviceSession, "device_session", lambda user: DeviceSession.user_id == user.id)

#: Accounts, for the admins who manage them (the route's rule already admits only admins).
USERS = Scope(User, "user", lambda user: sa.true())
