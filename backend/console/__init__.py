"""The staff console: Bridgeline in the browser for ED nurses, clinic staff and admins (and a
coach at a desk), served under `/console/` by the same app (`../shared/design/console.md`).

It is another face of the same services, scopes and audit as the JSON API: its views parse a
form with the API's own schemas (`forms.load`), call the services, and render Jinja templates.
What differs is only the face: a device session in a cookie (`session.py`; the API never
accepts it), CSRF tokens on every POST (Flask-WTF), a strict Content-Security-Policy, and
errors as pages in the console's style.
"""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from backend import errors
from backend.auth import access
from backend.console import session

bp = Blueprint("console", __name__, url_prefix="/console", template_folder="templates", static_folder="static")
csrf = CSRFProtect()

#: Scripts and styles from this origin's static files only; no inline script or style, no frames.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; connect-src 'self'")


@bp.before_request
def _protect_forms() -> None:
    if request.method == "POST":
        csrf.protect()


@bp.after_request
def _headers(response):
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    return response


def _error_page(problem: dict):
    """An error as a page: the status, what went wrong and the request id (never a stack)."""
    if problem["status"] == 401:
        return session.to_sign_in()
    page = render_template("console/error.html", problem=problem)
    return _headers(current_app.response_class(page, status=problem["status"], mimetype="text/html"))


def init_app(app: Flask) -> None:
    from backend.console import admin, clinic, continuity, records, views  # noqa: F401 - they register the pages

    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # only the console's POSTs; the API has no cookie
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # the session's idle timeout bounds it
    app.config.update(session.flask_session_cookie(app.config))
    csrf.init_app(app)
    access.authenticate_with(bp.name, session.authenticate)
    errors.render_pages_under(bp.url_prefix + "/", _error_page)
    app.register_blueprint(bp)


@bp.app_errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError):
    return errors.problem_response(400, "This form was not sent from an open console page, or the page was "
                                        "open too long. Nothing was saved: go back, reload the page and try again.",
                                   type="csrf-refused")
