"""Signing in to the console: a device session like the API's (the same table, idle timeout,
revocation and throttling), carried in a cookie the JSON API never reads.

The cookie is `HttpOnly`, `SameSite=Lax` and, in production, `Secure` with the `__Host-`
prefix (so no other host or path can set it). A second, long-lived cookie holds the device
cookie of OWASP's scheme, so a browser that signed in before gets through an account-wide
sign-in lock (as a phone does with its `device_cookie`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, redirect, request, url_for

from backend.auth import service as auth_service
from backend.auth.models import DeviceSession
from backend.errors import Problem

DEVICE_NAME = "Staff console (browser)"
#: A year: the device cookie proves only that this browser signed in before.
DEVICE_COOKIE_MAX_AGE = 365 * 24 * 3600


def _production() -> bool:
    return current_app.config["BRIDGELINE_ENV"] == "production"


def session_cookie_name() -> str:
    return "__Host-bridgeline_session" if _production() else "bridgeline_session"


def device_cookie_name() -> str:
    return "__Host-bridgeline_device" if _production() else "bridgeline_device"


def flask_session_cookie(config) -> dict:
    """Flask's own session cookie holds only the CSRF secret; hardened the same way."""
    production = config["BRIDGELINE_ENV"] == "production"
    return {"SESSION_COOKIE_NAME": "__Host-bridgeline_csrf" if production else "bridgeline_csrf",
            "SESSION_COOKIE_HTTPONLY": True, "SESSION_COOKIE_SAMESITE": "Lax",
            "SESSION_COOKIE_SECURE": production, "SESSION_COOKIE_PATH": "/"}


def authenticate() -> DeviceSession:
    """The console's authenticator (see `backend.auth.access.authenticate_with`)."""
    token = request.cookies.get(session_cookie_name(), "")
    session = auth_service.session_for_token(token) if token else None
    if session is None:
        raise Problem(401, "Sign in to the console.")
    return session


def to_sign_in():
    """Off to the sign-in page, coming back here afterwards (a GET's own path: ids, never PHI)."""
    ended = bool(request.cookies.get(session_cookie_name()))
    back = request.path if request.method == "GET" else None
    response = redirect(url_for("console.sign_in", next=back, ended=1 if ended else None))
    if ended:
        forget(response)
    return response


def remember(response, issued: auth_service.IssuedToken) -> None:
    production = _production()
    response.set_cookie(session_cookie_name(), issued.token, httponly=True, secure=production, samesite="Lax",
                        path="/")
    if issued.device_cookie:
        response.set_cookie(device_cookie_name(), issued.device_cookie, max_age=DEVICE_COOKIE_MAX_AGE,
                            httponly=True, secure=production, samesite="Lax", path="/")


def forget(response) -> None:
    response.delete_cookie(session_cookie_name(), path="/", secure=_production(), httponly=True, samesite="Lax")


def device_cookie() -> str | None:
    return request.cookies.get(device_cookie_name())


def local_path(target: str | None) -> str | None:
    """`target` if it is a path of the console on this site (never another site: no scheme, no
    host, no `//`), else None."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/console/") or target.startswith("//") \
            or "\\" in target:
        return None
    return target
