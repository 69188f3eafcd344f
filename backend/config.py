"""Configuration, read once from the environment.

Every setting Bridgeline reads lives here, with its default, so an operator can find them all
in one place (the README lists them too). Nothing else in the package reads `os.environ`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os

#: Development fallbacks; production refuses to start with them.
DEFAULT_SECRET_KEY = "dev-only-not-secret"
DEFAULT_AUDIT_HMAC_KEY = "dev-only-audit-key"


#: Settings that are secrets: each may come from a file instead (`SECRET_KEY_FILE=/run/secrets/…`,
#: the container and systemd `LoadCredential` convention), so it never sits in the environment.
SECRETS = ("SECRET_KEY", "AUDIT_HMAC_KEY", "DATABASE_URL", "TWILIO_AUTH_TOKEN", "METRICS_TOKEN", "SENTRY_DSN")


def _secret(name: str, default: str | None) -> str | None:
    """A secret from `NAME`, or from the file `NAME_FILE` names (trailing newline removed)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        if os.environ.get(name):
            raise RuntimeError(f"Set {name} or {name}_FILE, not both")
        try:
            with open(path, encoding="utf-8") as file:
                value = file.read().rstrip("\r\n")
        except OSError as exc:
            raise RuntimeError(f"{name}_FILE names a file that cannot be read: {exc.strerror}") from exc
        if not value:
            raise RuntimeError(f"{name}_FILE names an empty file")
        return value
    return os.environ.get(name) or default


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from exc


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from exc


def _ints(name: str, default: str) -> tuple[int, ...]:
    raw = os.environ.get(name) or default
    try:
        values = tuple(sorted({int(part) for part in raw.split(",") if part.strip()}))
    except ValueError as exc:
        raise RuntimeError(f"{name} must be comma-separated integers, got {raw!r}") from exc
    if not values or min(values) < 0:
        raise RuntimeError(f"{name} must list at least one non-negative integer")
    return values


def _networks(name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    raw = os.environ.get(name) or ""
    try:
        return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(",") if part.strip())
    except ValueError as exc:
        raise RuntimeError(f"{name} must be comma-separated networks such as 10.0.0.0/8, got {raw!r}") from exc


def _time(name: str, default: str) -> dt.time:
    raw = os.environ.get(name) or default
    try:
        return dt.time.fromisoformat(raw)
    except ValueError as exc:
        raise RuntimeError(f"{name} must be a time such as 08:00, got {raw!r}") from exc


#: Rules every request follows, which a schema cannot say field by field (the spec's description).
INPUT_RULES = (
    "The guide for clients is mobile_api_spec/README.md. Rules every request follows: bodies are JSON "
    "objects; a name given twice in one object is a 400, an unknown field or query parameter a 422, a query "
    "parameter given twice a 422. Text may not contain NUL (U+0000) or an unpaired surrogate (422 naming the "
    "field). Timestamps carry an offset and convert to UTC between years 1 and 9999; a time something happened "
    "(`occurred_at`, `signed_at`, …) is not before 2000-01-01 nor more than 5 minutes ahead of the server. "
    "Errors about the body as a whole (a rule across fields) are under the name \"\" in `errors`.")


class Config:
    """Settings for a running Bridgeline (development or production)."""

    def __init__(self) -> None:
        env = os.environ
        #: `development` (default) or `production`; production enforces the checks in `validate`.
        self.BRIDGELINE_ENV = env.get("BRIDGELINE_ENV", "development")
        self.SECRET_KEY = _secret("SECRET_KEY", DEFAULT_SECRET_KEY)
        #: Keys the audit trail's hash chain; keep it out of the database and never change it
        #: (events hashed under another key no longer verify).
        self.AUDIT_HMAC_KEY = _secret("AUDIT_HMAC_KEY", DEFAULT_AUDIT_HMAC_KEY)
        #: None means the SQLite file `instance/bridgeline.db` (set by the app factory).
        self.SQLALCHEMY_DATABASE_URI = _secret("DATABASE_URL", None)
        self.PUBLIC_BASE_URL = env.get("PUBLIC_BASE_URL", "http://localhost:8000")
        self.DEFAULT_TIMEZONE = env.get("DEFAULT_TIMEZONE", "America/New_York")
        #: The zone of the hospital's HL7 v2 timestamps that carry no offset (the ADT feed).
        self.HL7_TIMEZONE = env.get("HL7_TIMEZONE") or self.DEFAULT_TIMEZONE
        #: PostgreSQL: how long to wait for a connection, and for one statement (the outcomes
        #: report's recount sets its own, longer limit).
        self.DATABASE_CONNECT_TIMEOUT_SECONDS = _int("DATABASE_CONNECT_TIMEOUT_SECONDS", 3)
        # Below gunicorn's 30 s worker timeout, so a slow statement answers 503, not a killed worker.
        self.DATABASE_STATEMENT_TIMEOUT_SECONDS = _int("DATABASE_STATEMENT_TIMEOUT_SECONDS", 20)
        #: SQLite: how long a write waits for another's lock before answering 503.
        self.DATABASE_BUSY_TIMEOUT_SECONDS = _float("DATABASE_BUSY_TIMEOUT_SECONDS", 5)
        #: Number of reverse proxies in front of gunicorn whose X-Forwarded-For we trust.
        self.TRUSTED_PROXY_COUNT = _int("TRUSTED_PROXY_COUNT", 0)

        # SMS (used by the outreach module).
        self.SMS_BACKEND = env.get("SMS_BACKEND", "console")
        self.TWILIO_ACCOUNT_SID = env.get("TWILIO_ACCOUNT_SID", "")
        self.TWILIO_AUTH_TOKEN = _secret("TWILIO_AUTH_TOKEN", "")
        self.TWILIO_MESSAGING_SERVICE_SID = env.get("TWILIO_MESSAGING_SERVICE_SID", "")
        self.TWILIO_FROM_NUMBER = env.get("TWILIO_FROM_NUMBER", "")
        self.TWILIO_API_BASE_URL = env.get("TWILIO_API_BASE_URL", "https://api.twilio.com")
        #: The number HELP replies and templates' {callback_phone} give (no service name with it).
        self.SMS_CALLBACK_PHONE = env.get("SMS_CALLBACK_PHONE", "(617) 555-0100")
        # Automatic texts (product.md, privacy.md): check-ins on these days after discharge at this
        # patient-local time; reminders these hours before an appointment; nothing automatic
        # outside the send window; at most so many a (local) day and a (rolling) week.
        self.SMS_CHECK_IN_DAYS = _ints("SMS_CHECK_IN_DAYS", "1,3,7,14,30")
        self.SMS_CHECK_IN_TIME = _time("SMS_CHECK_IN_TIME", "10:00")
        self.SMS_REMINDER_HOURS = _ints("SMS_REMINDER_HOURS", "24,2")
        self.SMS_SEND_WINDOW_START = _time("SMS_SEND_WINDOW_START", "08:00")
        self.SMS_SEND_WINDOW_END = _time("SMS_SEND_WINDOW_END", "21:00")
        self.SMS_MAX_AUTOMATIC_PER_DAY = _int("SMS_MAX_AUTOMATIC_PER_DAY", 1)
        self.SMS_MAX_AUTOMATIC_PER_WEEK = _int("SMS_MAX_AUTOMATIC_PER_WEEK", 3)
        # The dispatcher (clock job, and `flask --app backend outreach dispatch`).
        self.SMS_DISPATCH_SECONDS = _int("SMS_DISPATCH_SECONDS", 2)
        self.SMS_DISPATCH_BATCH = _int("SMS_DISPATCH_BATCH", 100)
        self.SMS_SEND_TIMEOUT_SECONDS = _int("SMS_SEND_TIMEOUT_SECONDS", 10)
        #: Requests to Twilio in flight at once per dispatcher.
        self.SMS_SEND_CONCURRENCY = _int("SMS_SEND_CONCURRENCY", 8)
        #: Attempts when Twilio is busy (429) or unreachable before anything was sent.
        self.SMS_MAX_ATTEMPTS = _int("SMS_MAX_ATTEMPTS", 5)
        self.SMS_RETRY_BASE_SECONDS = _int("SMS_RETRY_BASE_SECONDS", 30)
        #: A row still `sending` this long after its claim belongs to a dispatcher that stopped.
        #: Must exceed the longest a batch can take to send (checked in `validate`).
        self.SMS_SENDING_STALE_SECONDS = _int("SMS_SENDING_STALE_SECONDS", 600)
        #: How long a pass keeps retrying to write send outcomes when the database went away
        #: mid-batch (then later passes of the same process keep trying; see the dispatcher).
        self.SMS_OUTCOME_RETRY_SECONDS = _float("SMS_OUTCOME_RETRY_SECONDS", 30)

        # Sessions and sign-in (privacy.md "Access").
        self.SESSION_IDLE_TIMEOUT_STAFF_SECONDS = _int("SESSION_IDLE_TIMEOUT_STAFF_SECONDS", 30 * 60)
        self.SESSION_IDLE_TIMEOUT_COACH_SECONDS = _int("SESSION_IDLE_TIMEOUT_COACH_SECONDS", 12 * 3600)
        self.SESSION_MAX_AGE_SECONDS = _int("SESSION_MAX_AGE_SECONDS", 30 * 24 * 3600)
        self.LOGIN_MAX_FAILURES = _int("LOGIN_MAX_FAILURES", 5)
        self.LOGIN_ACCOUNT_MAX_FAILURES = _int("LOGIN_ACCOUNT_MAX_FAILURES", 50)
        self.LOGIN_FAILURE_WINDOW_SECONDS = _int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
        self.LOGIN_LOCKOUT_SECONDS = _int("LOGIN_LOCKOUT_SECONDS", 15 * 60)
        #: Argon2id cost; the defaults are argon2-cffi's (RFC 9106 low-memory profile).
        self.ARGON2_TIME_COST = _int("ARGON2_TIME_COST", 3)
        self.ARGON2_MEMORY_COST_KIB = _int("ARGON2_MEMORY_COST_KIB", 64 * 1024)

        self.CLOCK_HEARTBEAT_SECONDS = _int("CLOCK_HEARTBEAT_SECONDS", 30)
        #: How often the clock's sequencer seals new audit events into the hash chain.
        self.AUDIT_SEAL_SECONDS = _int("AUDIT_SEAL_SECONDS", 1)
        # Handoff deadlines (product.md): ED→clinic accept 24 h, arrive 72 h; to a community
        # program accept 72 h, arrive 14 days.
        self.HANDOFF_CLINIC_ACCEPT_HOURS = _int("HANDOFF_CLINIC_ACCEPT_HOURS", 24)
        self.HANDOFF_CLINIC_ARRIVE_HOURS = _int("HANDOFF_CLINIC_ARRIVE_HOURS", 72)
        self.HANDOFF_PROGRAM_ACCEPT_HOURS = _int("HANDOFF_PROGRAM_ACCEPT_HOURS", 72)
        self.HANDOFF_PROGRAM_ARRIVE_HOURS = _int("HANDOFF_PROGRAM_ARRIVE_HOURS", 14 * 24)
        self.HANDOFF_DEADLINE_CHECK_SECONDS = _int("HANDOFF_DEADLINE_CHECK_SECONDS", 300)
        self.LOG_LEVEL = env.get("LOG_LEVEL", "INFO")
        # Idempotency-Key records are kept this many days (at least 7: phones queue writes offline).
        self.IDEMPOTENCY_RETENTION_DAYS = _int("IDEMPOTENCY_RETENTION_DAYS", 7)
        # Observability (README "Observability"): who may read /metrics — a client whose address,
        # and whose proxies' report of it, fall in these networks (none by default), or one
        # carrying this bearer token; and where error reports go (none unless a DSN is given).
        self.METRICS_ALLOWED_NETWORKS = _networks("METRICS_ALLOWED_NETWORKS")
        self.METRICS_TOKEN = _secret("METRICS_TOKEN", "")
        self.SENTRY_DSN = _secret("SENTRY_DSN", "")

        # Fixed settings.
        self.MAX_CONTENT_LENGTH = 64 * 1024
        # A pooled connection is checked before use only after a second idle (`ping_when_idle`).
        self.SQLALCHEMY_ENGINE_OPTIONS = {}
        self.API_TITLE = "Bridgeline API"
        self.API_VERSION = "1.15.0"
        self.OPENAPI_VERSION = "3.1.0"
        self.OPENAPI_URL_PREFIX = "/api/v1"
        self.OPENAPI_JSON_PATH = "openapi.json"
        # Paths carry /api/v1 (and /health, /ready sit at the root): the server is the origin
        # that serves the document, whatever host a deployment has.
        self.API_SPEC_OPTIONS = {"info": {"description": INPUT_RULES}, "servers": [{
            "url": "/", "description": "The origin serving this document (e.g. https://bridgeline.example.org)."}]}
        self.PREFERRED_URL_SCHEME = "https" if self.is_production else "http"

    @property
    def is_production(self) -> bool:
        return self.BRIDGELINE_ENV == "production"

    def validate(self) -> None:
        """Refuse configurations that would be unsafe with real patient data."""
        if self.BRIDGELINE_ENV not in {"development", "production", "test"}:
            raise RuntimeError("BRIDGELINE_ENV must be development, production or test")
        if self.SMS_BACKEND not in {"console", "twilio"}:
            raise RuntimeError("SMS_BACKEND must be console or twilio")
        if self.IDEMPOTENCY_RETENTION_DAYS < 7:
            raise RuntimeError("IDEMPOTENCY_RETENTION_DAYS must be at least 7 (the guide promises phones a week)")
        if self.SMS_SEND_WINDOW_START >= self.SMS_SEND_WINDOW_END:
            raise RuntimeError("SMS_SEND_WINDOW_START must come before SMS_SEND_WINDOW_END")
        if self.SMS_MAX_AUTOMATIC_PER_DAY < 1 or self.SMS_MAX_AUTOMATIC_PER_WEEK < 1:
            raise RuntimeError("SMS_MAX_AUTOMATIC_PER_DAY and SMS_MAX_AUTOMATIC_PER_WEEK must be at least 1")
        # A batch sends SMS_SEND_CONCURRENCY at a time, each request taking up to the timeout to
        # connect and again to answer: rows of a slow batch must not look abandoned.
        rounds = -(-self.SMS_DISPATCH_BATCH // max(1, self.SMS_SEND_CONCURRENCY))
        slowest_batch = rounds * 2 * self.SMS_SEND_TIMEOUT_SECONDS
        if self.SMS_SENDING_STALE_SECONDS <= slowest_batch:
            raise RuntimeError(f"SMS_SENDING_STALE_SECONDS must exceed {slowest_batch} s, the longest a batch of "
                               "SMS_DISPATCH_BATCH texts can take at SMS_SEND_CONCURRENCY and SMS_SEND_TIMEOUT_SECONDS")
        if self.SMS_SEND_CONCURRENCY < 1 or self.SMS_DISPATCH_BATCH < 1:
            raise RuntimeError("SMS_SEND_CONCURRENCY and SMS_DISPATCH_BATCH must be at least 1")
        if self.SMS_BACKEND == "twilio" and not (
                self.TWILIO_ACCOUNT_SID and self.TWILIO_AUTH_TOKEN
                and (self.TWILIO_MESSAGING_SERVICE_SID or self.TWILIO_FROM_NUMBER)):
            raise RuntimeError("SMS_BACKEND=twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and "
                               "TWILIO_MESSAGING_SERVICE_SID or TWILIO_FROM_NUMBER")
        if not self.is_production:
            return
        if self.SECRET_KEY == DEFAULT_SECRET_KEY or len(self.SECRET_KEY) < 32:
            raise RuntimeError("production needs SECRET_KEY set to a random value of 32+ characters")
        if self.AUDIT_HMAC_KEY == DEFAULT_AUDIT_HMAC_KEY or len(self.AUDIT_HMAC_KEY) < 32:
            raise RuntimeError("production needs AUDIT_HMAC_KEY set to a random value of 32+ characters")
        if not self.PUBLIC_BASE_URL.startswith("https://"):
            raise RuntimeError("production needs PUBLIC_BASE_URL to be an https:// URL")
        if not self.SQLALCHEMY_DATABASE_URI:
            raise RuntimeError("production needs DATABASE_URL (PostgreSQL)")
        if self.METRICS_TOKEN and len(self.METRICS_TOKEN) < 32:
            raise RuntimeError("production needs METRICS_TOKEN, when set, to be a random value of 32+ characters")

    def as_dict(self) -> dict:
        return {k: v for k, v in vars(self).items() if k.isupper()}


class TestConfig(Config):
    """Fast, deterministic settings for the test suite."""

    __test__ = False  # not a pytest test class

    def __init__(self, database_url: str) -> None:
        super().__init__()
        self.BRIDGELINE_ENV = "test"
        self.TESTING = True
        self.SECRET_KEY = "test-secret-key"
        self.SQLALCHEMY_DATABASE_URI = database_url
        self.SMS_BACKEND = "console"
        self.PUBLIC_BASE_URL = "http://testserver"
        # Cheap hashing in tests only (stack-notes: defaults cost ~115 ms a hash).
        self.ARGON2_TIME_COST = 1
        self.ARGON2_MEMORY_COST_KIB = 64
