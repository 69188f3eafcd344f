"""Twilio's webhooks: `POST /webhooks/twilio/inbound` (a reply) and `/webhooks/twilio/status`
(a text's progress). Form-encoded, answered with TwiML.

Only requests carrying a valid `X-Twilio-Signature` are heard: the library's validator, over
`PUBLIC_BASE_URL` plus the path and query (the URL Twilio called, whatever proxies sit between)
and the form fields, keyed with `TWILIO_AUTH_TOKEN`. Anything else is 403, logged, and changes
nothing. These routes are for Twilio, not the phone app: they are not in the OpenAPI contract.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.request_validator import (
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from backend.auth.access import public
from backend.errors import Problem
from backend.outreach import inbound

log = logging.getLogger(__name__)

blp = Blueprint("twilio_webhooks", __name__, url_prefix="/webhooks/twilio")


@blp.post("/inbound")
@public
def inbound_text():
    _check_signature()
    reply = inbound.receive(request.form)
    twiml = MessagingResponse()
    if reply is not None:
        twiml.message(reply)
    return _twiml(twiml)


@blp.post("/status")
@public
def status_callback():
    _check_signature()
    inbound.status_callback(request.form, message_id=request.args.get("message_id"))
    return _twiml(MessagingResponse())


def public_url() -> str:
    """The URL Twilio called: the public base, then the path and query as received."""
    query = request.query_string.decode("latin-1")
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + request.path + (f"?{query}" if query else "")


def _check_signature() -> None:
    token = current_app.config["TWILIO_AUTH_TOKEN"]
    signature = request.headers.get("X-Twilio-Signature", "")
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    if not token or not signature or not RequestValidator(token).validate(public_url(), request.form, signature,
                                                                         algorithm=algorithm):
        log.warning("twilio webhook refused: bad or missing signature",
                    extra={"path": request.path, "remote_addr": request.remote_addr})
        raise Problem(403, "The X-Twilio-Signature header is missing or does not match this request.")


def _twiml(response: MessagingResponse) -> Response:
    return Response(str(response), status=200, mimetype="text/xml")
