"""Users, their roles and the role groups every access rule names, their device sessions, and
the sign-in failure counters.

A device session is one bearer token on one phone or desk: only the token's SHA-256 is stored,
so a database leak does not leak usable tokens, and revoking a lost phone is one row.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.database import UUIDPrimaryKey, enum_column, utcnow
from backend.extensions import db


class Role(enum.StrEnum):
    COACH = "coach"
    ED_NURSE = "ed_nurse"
    CLINIC_STAFF = "clinic_staff"
    ADMIN = "admin"
    #: A service account, not a person: the hospital's interface engine. It may reach only the HL7
    #: v2 feed (`POST /api/v1/interfaces/hl7v2`); every other route refuses it (privacy.md, machine
    #: accounts). Created like any account: `flask --app backend users create <name> --role
    #: interface --display-name …` or the console's Users page; it signs in with `POST
    #: /api/v1/auth/tokens` like a person and is audited like one.
    INTERFACE = "interface"


#: The roles of people (every role but the interface engine's): what `@signed_in` admits.
PEOPLE = frozenset(Role) - {Role.INTERFACE}
#: The clinical roles, who work with patient records (an admin is not a clinician: privacy.md).
CLINICAL_ROLES = frozenset({Role.COACH, Role.ED_NURSE, Role.CLINIC_STAFF})
#: Roles an admin's grant puts in force only once a second person approves (two people grant
#: access to patient records): the clinical roles, and the interface engine's, whose messages
#: write patient records.
TWO_PERSON_ROLES = CLINICAL_ROLES | {Role.INTERFACE}
#: Who works a case after the ED: its coach and clinic staff (contacts, tasks, texts, consents,
#: and the receiving side of handoffs).
CASE_WORKERS = frozenset({Role.COACH, Role.CLINIC_STAFF})
#: Who registers patients, opens episodes and assigns their coach: ED nurses and clinic staff.
REGISTRARS = frozenset({Role.ED_NURSE, Role.CLINIC_STAFF})


class Access(enum.StrEnum):
    """Whether a person's role is in force. A clinical role an admin gives (a new account or a
    role change) is `pending` until a clinic-staff member other than the grantee approves it:
    no single admin can reach patient records (privacy.md, two people grant clinical access)."""

    ACTIVE = "active"
    PENDING = "pending"


class User(UUIDPrimaryKey, db.Model):
    __tablename__ = "users"

    #: Sign-in name, stored lower-case; unique.
    username: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: How colleagues see this person (not patient data).
    display_name: Mapped[str] = mapped_column(sa.String(100))
    role: Mapped[Role] = mapped_column(enum_column(Role, "user_role", length=20))
    #: Argon2id hash (PHC string); never the password.
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    #: Inactive users cannot sign in and their sessions are revoked.
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deactivated_at: Mapped[dt.datetime | None]
    #: Pending while a clinical role given by an admin awaits a second person's approval.
    access: Mapped[Access] = mapped_column(enum_column(Access, "user_access", length=10, constraint=False),
                                           default=Access.ACTIVE, server_default=Access.ACTIVE.value)
    #: The admin who gave the clinical role now pending or last approved, and when.
    access_granted_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    access_granted_at: Mapped[dt.datetime | None]
    #: The clinic-staff member who approved it, and when.
    access_approved_by_id: Mapped[uuid.UUID | None] = mapped_column(sa.ForeignKey("users.id"))
    access_approved_at: Mapped[dt.datetime | None]

    sessions: Mapped[list[DeviceSession]] = relationship(back_populates="user", lazy="raise",
                                                         foreign_keys="DeviceSession.user_id")


class DeviceSession(UUIDPrimaryKey, db.Model):
    __tablename__ = "device_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(sa.ForeignKey("users.id"), index=True)
    #: Chosen by the client at sign-in ("Pixel 7 (work)"), shown in the device list.
    device_name: Mapped[str] = mapped_column(sa.String(100))
    #: SHA-256 (hex) of the bearer token.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Last authenticated request (updated at most every `TOUCH_INTERVAL`).
    last_seen_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    #: Absolute end of the session, whatever the activity.
    expires_at: Mapped[dt.datetime]
    #: Inactivity after which the token stops working; fixed at sign-in from the role.
    idle_timeout_seconds: Mapped[int]
    revoked_at: Mapped[dt.datetime | None]
    #: `signed_out`, `revoked_by_user`, `revoked_by_admin`, `user_deactivated`, `user_changed`.
    revoked_reason: Mapped[str | None] = mapped_column(sa.String(40))

    user: Mapped[User] = relationship(back_populates="sessions", lazy="joined")

    #: last_seen_at is written only when older than this, sparing a write on every request.
    TOUCH_INTERVAL = dt.timedelta(seconds=30)

    def idle_deadline(self) -> dt.datetime:
        return self.last_seen_at + dt.timedelta(seconds=self.idle_timeout_seconds)

    def is_usable(self, now: dt.datetime) -> bool:
        return (
            self.revoked_at is None
            and self.user.active
            and now < self.expires_at
            and now < self.idle_deadline()
        )


class LoginThrottle(db.Model):
    """Consecutive failed sign-ins per username, shared by every worker through the database."""

    __tablename__ = "login_throttles"

    #: The username as typed, lower-cased (also for names that match no user).
    username_key: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failure_at: Mapped[dt.datetime]
    #: Set when the failures reach the limit; sign-in answers 429 until then.
    locked_until: Mapped[dt.datetime | None]
