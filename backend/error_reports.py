"""Error reports to Sentry (or any service that speaks its protocol), only when `SENTRY_DSN` is set.

`create_app` calls `init` in every process that builds the app: gunicorn's workers, the clock,
the commands. What is reported: every log record at ERROR or above (an unexpected exception is
logged as one, with its stack, by `backend.errors`; so is a failed clock job) — as the logs
are, ids only, never patient data (privacy.md):

- an exception is its type and stack, never its message (a driver's message can quote row
  data), nor any frame's local variables or the source lines around the one that ran;
- a log record is its message template, without its arguments or `extra` fields;
- of the request, only its method, route template and request id (a tag, to find the logs);
  no URL (paths carry patient ids), query string, headers (`Authorization`!), cookies, body
  or user; no breadcrumbs, sessions or traces.

The SDK's own options ask for all of that; `scrub`, run on every event before it leaves,
enforces it whatever an integration added.
"""

from __future__ import annotations

import importlib.metadata
import logging

from flask import g, has_request_context, request

#: Members of an event that may leave the process (anything else is dropped by `scrub`).
_KEPT = {"event_id", "timestamp", "platform", "level", "logger", "server_name", "release", "environment",
         "exception", "threads", "logentry", "tags", "contexts", "sdk", "modules", "transaction", "fingerprint"}
#: Contexts that describe the machine and the runtime, not the request.
_KEPT_CONTEXTS = {"os", "runtime", "trace", "device"}


def init(config) -> bool:
    """Start reporting if `SENTRY_DSN` is set; True if it is."""
    dsn = config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=config.get("BRIDGELINE_ENV"),
        release=_release(),
        # What integrations collect (the SDK's successor to send_default_pii=False): nothing of
        # the user, cookies, headers, bodies, query strings, queries' data or frames' variables,
        # and of the source only the line that ran.
        data_collection={"user_info": False, "cookies": {"mode": "off"}, "http_headers": {"request": {"mode": "off"}},
                         "http_bodies": [], "url_query_params": {"mode": "off"}, "database_query_data": False,
                         "queues": False, "stack_frame_variables": False, "frame_context_lines": 0,
                         "gen_ai": {"inputs": False, "outputs": False}},
        include_local_variables=False,
        max_request_body_size="never",
        max_breadcrumbs=0,
        auto_session_tracking=False,
        send_client_reports=False,
        traces_sample_rate=None,
        auto_enabling_integrations=False,
        integrations=[FlaskIntegration(transaction_style="url"),
                      LoggingIntegration(level=None, event_level=logging.ERROR, sentry_logs_level=None)],
        before_send=scrub,
        before_breadcrumb=lambda crumb, hint: None,
    )
    return True


def _release() -> str | None:
    try:
        return f"bridgeline@{importlib.metadata.version('bridgeline')}"
    except importlib.metadata.PackageNotFoundError:
        return None


def scrub(event: dict, hint: dict | None = None) -> dict:
    """Keep only what may leave (see the module's docstring); add the request's id and route."""
    for key in set(event) - _KEPT:
        del event[key]
    for group in ("exception", "threads"):
        for value in (event.get(group) or {}).get("values") or []:
            value.pop("value", None)
            for frame in (value.get("stacktrace") or {}).get("frames") or []:
                for detail in ("vars", "pre_context", "post_context"):
                    frame.pop(detail, None)
    if "logentry" in event:
        event["logentry"] = {"message": (event["logentry"] or {}).get("message", "")}
    event["contexts"] = {name: ctx for name, ctx in (event.get("contexts") or {}).items() if name in _KEPT_CONTEXTS}
    tags = event["tags"] = {k: v for k, v in (event.get("tags") or {}).items() if k in ("request_id", "route")}
    if has_request_context():
        tags["request_id"] = g.get("request_id")
        tags["route"] = request.url_rule.rule if request.url_rule else "unmatched"
        event["request"] = {"method": request.method}
    return event
