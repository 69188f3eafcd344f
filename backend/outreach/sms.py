"""Handing a text to the SMS provider, and what can come back.

`SMS_BACKEND=twilio` sends through the official `twilio` library to `TWILIO_API_BASE_URL`
(Twilio's own by default; a local fake in tests and staging). `SMS_BACKEND=console` (the
default) sends nothing: it logs a line with the message id and segment count — never the number
or the text — and reports the message sent.

Every outcome is one of: accepted (a SID), `Retry` (nothing reached Twilio, or Twilio asked us to
slow down: safe to try again), `Misconfigured` (Twilio refused our credentials or account: the
text waits for the settings to be fixed), `Refused` (Twilio answered no for this text, with its
error code) or `Unknown` (the request may have left: a timeout, a dropped connection, a 5xx —
never retried automatically, so nobody is texted twice).
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future, ThreadPoolExecutor

import requests
import urllib3
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from backend.outreach import segments

log = logging.getLogger(__name__)


class Retry(Exception):
    """Not sent; safe to try again later."""


class Misconfigured(Exception):
    """Twilio refused Bridgeline itself (credentials, account, URL): nothing was sent, and no
    text is to blame — it waits, without using up its attempts, until the settings are fixed."""


class Refused(Exception):
    """Twilio refused the text; `code` is its error code."""

    def __init__(self, code: int | None, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class Unknown(Exception):
    """The request may have reached Twilio; whether the text went is not known."""


class ConsoleSender:
    """Development and demos: nothing leaves the machine."""

    def send(self, *, message_id: uuid.UUID, to: str, body: str, status_callback: str) -> str:
        log.info("sms sent (console backend)", extra={"message_id": str(message_id),
                                                       "segments": segments.count(body)})
        return f"SMconsole{uuid.uuid4().hex}"


class TwilioSender:
    def __init__(self, config) -> None:
        http_client = TwilioHttpClient(timeout=config["SMS_SEND_TIMEOUT_SECONDS"])
        self.client = Client(config["TWILIO_ACCOUNT_SID"], config["TWILIO_AUTH_TOKEN"], http_client=http_client)
        self.client.api.base_url = config["TWILIO_API_BASE_URL"].rstrip("/")
        if config["TWILIO_MESSAGING_SERVICE_SID"]:
            self.sender = {"messaging_service_sid": config["TWILIO_MESSAGING_SERVICE_SID"]}
        else:
            self.sender = {"from_": config["TWILIO_FROM_NUMBER"]}

    def send(self, *, message_id: uuid.UUID, to: str, body: str, status_callback: str) -> str:
        try:
            message = self.client.messages.create(to=to, body=body, status_callback=status_callback, **self.sender)
        except TwilioRestException as exc:
            if exc.status == 429:
                raise Retry("Twilio asked to slow down (HTTP 429)") from exc
            if exc.status >= 500:
                raise Unknown(f"Twilio answered HTTP {exc.status}") from exc
            if exc.status in (401, 403, 404):
                raise Misconfigured(f"Twilio refused the credentials, account or URL (HTTP {exc.status}, "
                                    f"error {exc.code}); check the TWILIO_* settings") from exc
            raise Refused(exc.code, f"Twilio refused the text (HTTP {exc.status}, error {exc.code})") from exc
        except requests.exceptions.ConnectTimeout as exc:
            raise Retry("Twilio could not be reached (connect timeout)") from exc
        except requests.exceptions.ConnectionError as exc:
            if _never_connected(exc):
                raise Retry("Twilio could not be reached (connection refused)") from exc
            raise Unknown("the connection dropped after the request was sent") from exc
        except requests.exceptions.RequestException as exc:  # read timeout and the like
            raise Unknown(f"no answer from Twilio ({type(exc).__name__})") from exc
        return message.sid


def _never_connected(exc: requests.exceptions.ConnectionError) -> bool:
    """True when the connection was never made (refused, no route, DNS): nothing was sent."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, urllib3.exceptions.MaxRetryError):
        reason = reason.reason
    return isinstance(reason, urllib3.exceptions.NewConnectionError | urllib3.exceptions.NameResolutionError)


def sender_for(config) -> ConsoleSender | TwilioSender:
    return TwilioSender(config) if config["SMS_BACKEND"] == "twilio" else ConsoleSender()


class SenderPool:
    """Sends on `SMS_SEND_CONCURRENCY` threads, each with its own client (and kept-alive
    connection): a request to Twilio takes ~100 ms over the internet, so one at a time would
    cap a dispatcher at ~10 texts a second. Only the HTTP requests run here; the database stays
    with the dispatcher's thread."""

    def __init__(self, config) -> None:
        self._config = config
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(max_workers=config["SMS_SEND_CONCURRENCY"], thread_name_prefix="sms")

    def submit(self, **text) -> Future:
        """Send `text` (message_id, to, body, status_callback); the future holds the SID or raises."""
        return self._executor.submit(self._send, text)

    def _send(self, text: dict) -> str:
        sender = getattr(self._local, "sender", None)
        if sender is None:
            sender = self._local.sender = sender_for(self._config)
        return sender.send(**text)

    def __enter__(self) -> SenderPool:
        return self

    def __exit__(self, exc_type, *_) -> None:
        # On a failure, texts not yet handed over stay unsent (their rows end `unknown`, never twice).
        self._executor.shutdown(wait=True, cancel_futures=exc_type is not None)
