"""Generic error pages (HTML) and JSON errors with a reason; never a stack trace to the client."""
from __future__ import annotations

from flask import Request, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.utils import cached_property

from ..extensions import db


class InvalidJson(ValueError):
    """The request body is not JSON that can be read; ``reason`` (translated) says why."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def request_json():
    """The JSON request body, parsed (any JSON value); None when the request is not sent as JSON (Content-Type).

    Raises InvalidJson for a malformed body and for one nested too deeply to parse: ``get_json(silent=True)``
    swallows only ValueError, so ``[[[…]]]`` nested some thousand levels escaped it as a RecursionError (500).
    """
    if not request.is_json:
        return None
    try:
        return request.get_json(silent=False)
    except BadRequest:  # Flask's answer to a ValueError (syntax, encoding, empty body)
        raise InvalidJson(_("The body is not valid JSON.")) from None
    except RecursionError:
        raise InvalidJson(_("The JSON is nested too deeply.")) from None


class CleanRequest(Request):
    """The app's request: query-string keys and values lose NUL characters, the same cleaning every form field
    gets (``core.forms.clean_text``): PostgreSQL cannot hold NUL in text, so a search for "%00" was a server
    error there."""

    @cached_property
    def args(self):
        raw = super().args
        if not any("\x00" in key or "\x00" in value for key, value in raw.items(multi=True)):
            return raw
        return self.parameter_storage_class(
            (key.replace("\x00", ""), value.replace("\x00", "")) for key, value in raw.items(multi=True))


def wants_json() -> bool:
    if request.path.startswith("/api/") or request.is_json:
        return True
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def error_response(status: int, title: str, reason: str | None = None):
    if wants_json():
        return jsonify({"error": title, "reason": reason or title, "status": status}), status
    try:
        return render_template("errors/error.html", status=status, title=title, reason=reason), status
    except Exception:  # the layout itself is broken: still answer with a plain page, never a stack trace
        from markupsafe import escape
        return (f"<!doctype html><title>{escape(title)}</title><h1>{status} {escape(title)}</h1>"
                f"<p>{escape(reason or '')}</p>"), status


def register(app) -> None:
    app.request_class = CleanRequest
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return error_response(400, _("Form expired or invalid"),
                              _("The form's security token was missing or expired. Reload the page and try again."))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.response is not None:  # a page answered for itself (e.g. the login form on a rate limit)
            return exc.response
        titles = {
            400: _("Bad request"), 401: _("Please sign in"), 403: _("Access denied"),
            404: _("Not found"), 405: _("Method not allowed"), 409: _("Conflict"),
            413: _("Upload too large"), 429: _("Too many requests"),
        }
        title = titles.get(exc.code or 500, exc.name)
        reason = exc.description if exc.description and exc.description != type(exc).description else None
        return error_response(exc.code or 500, title, reason)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if isinstance(exc, HTTPException):
            return http_error(exc)
        db.session.rollback()
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(500, _("Something went wrong"),
                              _("The error has been logged. Nothing was saved; please try again."))
