"""Use cases of identity: accounts, sign-in with throttling, device sessions and revocation.

Keyword-only functions that flush and never commit (the unit of work commits). Every sign-in,
failure, throttle and revocation is recorded in the audit trail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import math
import secrets

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

from backend import unit_of_work
from backend.audit import service as audit
from backend.auth.models import (
    TWO_PERSON_ROLES,
    Access,
    DeviceSession,
    LoginThrottle,
    Role,
    User,
)
from backend.database import upsert, utcnow
from backend.errors import Problem
from backend.extensions import db
from backend.pagination import keyset_page


class InvalidCredentials(Exception):
    """Unknown user, wrong password or inactive account: callers cannot tell which."""


class SignInThrottled(Exception):
    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(retry_after_seconds)
        self.retry_after_seconds = retry_after_seconds


@dataclasses.dataclass(frozen=True)
class IssuedToken:
    token: str
    session: DeviceSession
    #: Proof for later sign-ins that this device signed in before (see `sign_in`).
    device_cookie: str = ""


# --- passwords -----------------------------------------------------------------------------

def _hasher() -> PasswordHasher:
    cache = current_app.extensions.setdefault("bridgeline.password_hasher", {})
    if "hasher" not in cache:
        cfg = current_app.config
        cache["hasher"] = PasswordHasher(time_cost=cfg["ARGON2_TIME_COST"],
                                         memory_cost=cfg["ARGON2_MEMORY_COST_KIB"])
        # Verified against when the username is unknown, so both paths cost the same.
        cache["dummy_hash"] = cache["hasher"].hash(secrets.token_urlsafe(16))
    return cache["hasher"]


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def _password_matches(user: User | None, password: str) -> bool:
    hasher = _hasher()
    stored = user.password_hash if user is not None else \
        current_app.extensions["bridgeline.password_hasher"]["dummy_hash"]
    try:
        hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False
    if user is not None and hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hasher.hash(password)
    return user is not None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# --- accounts ------------------------------------------------------------------------------

def normalise_username(username: str) -> str:
    return username.strip().lower()


def find_user_by_username(username: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.username == normalise_username(username)))


def list_users(*, role: Role | None, active: bool | None, cursor: str | None, limit: int):
    """One page of users in username order, and the next page's cursor."""
    stmt = sa.select(User)
    if role is not None:
        stmt = stmt.where(User.role == Role(role))
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    return keyset_page(stmt, keys=[User.username], cursor=cursor, limit=limit, session=db.session)


def create_user(*, username: str, display_name: str, role: Role, password: str, actor: User | None = None) -> User:
    username = normalise_username(username)
    if find_user_by_username(username) is not None:
        raise Problem(409, f"The username {username!r} is taken.", errors={"username": ["Already taken."]})
    user = User(username=username, display_name=display_name.strip(), role=Role(role),
                password_hash=hash_password(password))
    try:
        with db.session.begin_nested():  # a concurrent create of the same name loses here
            db.session.add(user)
    except sa.exc.IntegrityError:
        raise Problem(409, f"The username {username!r} is taken.", errors={"username": ["Already taken."]}) from None
    audit.record("user.create", resource_type="user", resource_id=user.id,
                 details={"role": str(user.role)}, actor=actor)
    if actor is not None:
        _grant(user, actor)
    return user


def _grant(user: User, actor: User) -> None:
    """A clinical role (or the interface engine's) an admin gives waits for a second person (a
    clinic-staff member other than the grantee); any other role is in force at once. Without an actor (the shell's
    `flask users create`, the demo seed) nobody is waiting to approve: the bootstrap."""
    if user.role not in TWO_PERSON_ROLES:
        user.access = Access.ACTIVE
        return
    user.access, user.access_granted_by_id, user.access_granted_at = Access.PENDING, actor.id, utcnow()
    user.access_approved_by_id = user.access_approved_at = None
    db.session.flush()
    audit.record("user.access_granted", resource_type="user", resource_id=user.id,
                 details={"role": str(user.role), "access": "pending"}, actor=actor)


def approve_access(*, user: User, approver: User, role: str | None = None) -> User:
    """A second person approves the clinical role an admin gave: the grantee's access starts.
    `user` is locked by the caller; `role`, when given, must be the role being approved (so an
    approval never covers a role changed since the approver looked)."""
    if approver.id == user.id:
        raise Problem(403, "Nobody approves their own clinical access: another clinic-staff member must.")
    if user.access != Access.PENDING or not user.active:
        raise Problem(409, "This person's access is not waiting for approval.", access=str(user.access))
    if role is not None and Role(role) != user.role:
        raise Problem(409, f"The role waiting for approval is {user.role}, not {role}.", role=str(user.role))
    user.access, user.access_approved_by_id, user.access_approved_at = Access.ACTIVE, approver.id, utcnow()
    db.session.flush()
    audit.record("user.access_approved", resource_type="user", resource_id=user.id,
                 details={"role": str(user.role), "granted_by": str(user.access_granted_by_id)}, actor=approver)
    return user


def pending_access() -> list[User]:
    """Clinical roles waiting for a second person's approval, oldest grant first."""
    return list(db.session.scalars(sa.select(User).where(User.access == Access.PENDING, User.active.is_(True))
                                   .order_by(User.access_granted_at, User.id)))


def update_user(*, user: User, changes: dict, actor: User | None = None) -> User:
    """Apply an admin's changes. Deactivation, a role change or a new password end every
    session: the person signs in again under the new rules."""
    new_role = Role(changes.get("role", user.role))
    new_active = changes.get("active", user.active)
    # Before anything is changed (and flushed): lock order is admins first, by id, for all.
    _keep_an_admin(user, becoming=new_role, active=new_active)
    revoke_reason = None
    if "display_name" in changes:
        user.display_name = changes["display_name"].strip()
    # A new clinical role, a password an admin set (they could sign in with it) or an account
    # brought back: each gives clinical access again, so each waits for a second person.
    regrant = new_role != user.role or "password" in changes or (new_active and not user.active)
    if new_role != user.role:
        user.role = new_role
        revoke_reason = "user_changed"
    if "password" in changes:
        user.password_hash = hash_password(changes["password"])
        revoke_reason = "user_changed"
    if new_active != user.active:
        user.active = new_active
        user.deactivated_at = None if new_active else utcnow()
        revoke_reason = "user_deactivated" if not new_active else revoke_reason
    if regrant and actor is not None:
        _grant(user, actor)
    db.session.flush()
    audit.record("user.update", resource_type="user", resource_id=user.id,
                 details={"fields": sorted(changes)}, actor=actor)
    if revoke_reason:
        revoke_all_sessions(user=user, reason=revoke_reason, actor=actor)
    return user


def _keep_an_admin(user: User, *, becoming: Role, active: bool) -> None:
    if user.role != Role.ADMIN or (becoming == Role.ADMIN and active):
        return
    # Lock the active admins (in one order for everyone): two admins demoting each other at
    # once must not both succeed, nor deadlock.
    admins = db.session.scalars(
        sa.select(User.id).where(User.role == Role.ADMIN, User.active.is_(True))
        .order_by(User.id).with_for_update()
    ).all()
    if not [admin_id for admin_id in admins if admin_id != user.id]:
        raise Problem(409, "This is the last active admin; make another admin first.")


# --- sign-in -------------------------------------------------------------------------------

def sign_in(*, username: str, password: str, device_name: str, address: str = "",
            device_cookie: str | None = None) -> IssuedToken:
    """Check the credentials and open a device session, or raise.

    Failures are counted twice, in the database (so every worker and process shares them):
    per username *and client address* — `LOGIN_MAX_FAILURES` there locks that username from
    that address only, so a stranger's guesses never lock the person out from their own
    phone — and per username across all addresses, where `LOGIN_ACCOUNT_MAX_FAILURES` (many
    more) locks the account against a guessing campaign from many addresses, except for a
    device that has signed in to it before and shows its device cookie (OWASP's device-cookie
    scheme). Raises SignInThrottled while locked (even with the right password),
    InvalidCredentials otherwise; both are recorded. Attempts on one username take turns (row
    locks held until commit, the account's row first), however many arrive at once.
    """
    key = normalise_username(username)[:255]
    # Rows are keyed by fingerprints, never the typed name (sometimes a password) or the address,
    # in two namespaces that cannot collide.
    account = _lock_throttle_row(f"account:{audit.username_fingerprint(key)}")
    pair = _lock_throttle_row("address:" + audit.username_fingerprint(key + "\n" + address))
    now = utcnow()  # after waiting for the locks
    user = find_user_by_username(key)
    trusted_device = device_cookie is not None and user is not None and \
        _device_cookie_valid(device_cookie, user)
    for throttle in (pair, account if not trusted_device else None):
        if throttle is not None and throttle.locked_until is not None and throttle.locked_until > now:
            retry_after = math.ceil((throttle.locked_until - now).total_seconds())
            audit.record("auth.sign_in_throttled", details={
                "username_hash": audit.username_fingerprint(key),
                "scope": "address" if throttle is pair else "account"})
            raise SignInThrottled(retry_after)

    if not _password_matches(user, password) or not user.active:
        _count_failure(pair, now, limit=current_app.config["LOGIN_MAX_FAILURES"])
        _count_failure(account, now, limit=current_app.config["LOGIN_ACCOUNT_MAX_FAILURES"])
        audit.record("auth.sign_in_failed", resource_type="user", resource_id=user.id if user else None,
                     details={"username_hash": audit.username_fingerprint(key)})
        raise InvalidCredentials()

    # Reset rather than delete: a concurrent attempt may be waiting for this row's lock. The
    # account-wide count stays: one success must not wipe a campaign's tally.
    pair.failures, pair.locked_until = 0, None
    issued = _open_session(user=user, device_name=device_name, now=now)
    issued = dataclasses.replace(issued, device_cookie=_new_device_cookie(user))
    audit.record("auth.sign_in", resource_type="device_session", resource_id=issued.session.id,
                 actor=user, device_session=issued.session)
    return issued


def _new_device_cookie(user: User) -> str:
    """A device cookie: proof that this device signed in to `user` before (a random nonce and
    its HMAC under the app's secret, bound to the account and its current password, so a new
    password ends every cookie; nothing is stored)."""
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_cookie_mac(user, nonce)}"


def _device_cookie_valid(cookie: str, user: User) -> bool:
    nonce, _, mac = cookie.partition(".")
    return bool(nonce) and hmac.compare_digest(mac.encode(), _cookie_mac(user, nonce).encode())


def _cookie_mac(user: User, nonce: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    message = f"device-cookie|{user.id}|{user.password_hash}|{nonce}"
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def _lock_throttle_row(key: str) -> LoginThrottle:
    """A failure counter row, created if needed and locked for this transaction, in one
    statement (a no-op update takes the row lock), so a concurrent purge cannot slip between
    finding the row and locking it."""
    stmt = upsert(
        LoginThrottle,
        {"username_key": key, "failures": 0, "last_failure_at": utcnow(), "locked_until": None},
        index_elements=["username_key"], update={"failures": LoginThrottle.failures},
        dialect=db.engine.dialect.name,
    ).returning(LoginThrottle)
    return db.session.scalars(stmt, execution_options={"populate_existing": True}).one()


def _count_failure(throttle: LoginThrottle, now: dt.datetime, *, limit: int) -> None:
    cfg = current_app.config
    window_start = now - dt.timedelta(seconds=cfg["LOGIN_FAILURE_WINDOW_SECONDS"])
    if throttle.last_failure_at < window_start:
        throttle.failures = 0
    throttle.failures += 1
    throttle.last_failure_at = now
    if throttle.failures >= limit:
        throttle.locked_until = now + dt.timedelta(seconds=cfg["LOGIN_LOCKOUT_SECONDS"])
        throttle.failures = 0


def purge_stale_sign_in_counters(*, now: dt.datetime | None = None) -> int:
    """Forget failure counters that can no longer lock anyone out (any typed name gets one)."""
    now = now or utcnow()
    cfg = current_app.config
    cutoff = now - dt.timedelta(seconds=cfg["LOGIN_FAILURE_WINDOW_SECONDS"])
    result = db.session.execute(sa.delete(LoginThrottle).where(
        LoginThrottle.last_failure_at < cutoff,
        sa.or_(LoginThrottle.locked_until.is_(None), LoginThrottle.locked_until < now)))
    return result.rowcount


def _open_session(*, user: User, device_name: str, now: dt.datetime) -> IssuedToken:
    cfg = current_app.config
    idle = cfg["SESSION_IDLE_TIMEOUT_COACH_SECONDS"] if user.role == Role.COACH \
        else cfg["SESSION_IDLE_TIMEOUT_STAFF_SECONDS"]
    token = secrets.token_urlsafe(32)
    session = DeviceSession(
        user=user,
        device_name=device_name,
        token_hash=hash_token(token),
        created_at=now,
        last_seen_at=now,
        expires_at=now + dt.timedelta(seconds=cfg["SESSION_MAX_AGE_SECONDS"]),
        idle_timeout_seconds=idle,
    )
    db.session.add(session)
    db.session.flush()
    return IssuedToken(token=token, session=session)


# --- sessions ------------------------------------------------------------------------------

#: Built once (every request runs it): the token's hash is a parameter.
_SESSION_BY_TOKEN_HASH = sa.select(DeviceSession).where(DeviceSession.token_hash == sa.bindparam("token_hash"))


def session_for_token(token: str) -> DeviceSession | None:
    """The usable session a bearer token belongs to (None otherwise). Its last-seen time is
    written after the request, in a short transaction of its own: held for the request, that
    row lock would deadlock two devices of one user revoking each other."""
    session = db.session.scalar(_SESSION_BY_TOKEN_HASH, {"token_hash": hash_token(token)})
    now = utcnow()
    if session is None or not session.is_usable(now):
        return None
    if now - session.last_seen_at >= DeviceSession.TOUCH_INTERVAL:
        session_id = session.id

        def touch_session() -> None:
            db.session.execute(sa.update(DeviceSession).where(
                DeviceSession.id == session_id, DeviceSession.last_seen_at < now).values(last_seen_at=now))

        unit_of_work.after(touch_session)
    return session


def active_sessions(*, user: User) -> list[DeviceSession]:
    now = utcnow()
    sessions = db.session.scalars(
        sa.select(DeviceSession)
        .where(DeviceSession.user_id == user.id, DeviceSession.revoked_at.is_(None),
               DeviceSession.expires_at > now)
        .order_by(DeviceSession.created_at.desc(), DeviceSession.id)
    ).all()
    return [s for s in sessions if s.is_usable(now)]


def revoke_session(*, session: DeviceSession, reason: str) -> None:
    if session.revoked_at is None:
        session.revoked_at = utcnow()
        session.revoked_reason = reason
        db.session.flush()
    audit.record("auth.session_revoked", resource_type="device_session", resource_id=session.id,
                 details={"reason": reason, "user_id": str(session.user_id)})


def revoke_all_sessions(*, user: User, reason: str, actor: User | None = None) -> int:
    """End every open session of `user` at once (lost phone, deactivation). Returns how many."""
    result = db.session.execute(
        sa.update(DeviceSession)
        .where(DeviceSession.user_id == user.id, DeviceSession.revoked_at.is_(None))
        .values(revoked_at=utcnow(), revoked_reason=reason)
    )
    audit.record("auth.sessions_revoked", resource_type="user", resource_id=user.id,
                 details={"reason": reason, "count": result.rowcount}, actor=actor)
    return result.rowcount
