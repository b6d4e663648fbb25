"""Template globals: enum labels, locale switch, pagination helpers."""
from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlencode

from flask import g, request, url_for
from flask_babel import get_locale, get_translations
from jinja2 import pass_context
from markupsafe import Markup

from . import enums


def register(app) -> None:
    @app.context_processor
    def inject_globals():
        translations = get_translations()
        return {
            "enums": enums,
            "current_locale": "en" if getattr(get_locale(), "language", "zh") == "en" else "zh_CN",
            # a page calls _() a hundred times or more; Flask-Babel's global looks the catalogue up per call
            "gettext": _gettext_with(translations),
            "ngettext": _ngettext_with(translations),
        }

    @app.template_global()
    def url_with(**updates) -> str:
        """The current URL with some query arguments replaced (None removes one); used by facets and pages."""
        args = request.args.to_dict(flat=False)
        for key, value in updates.items():
            if value is None:
                args.pop(key, None)
            else:
                args[key] = [value]
        if "page" not in updates:  # a new filter starts again from page one
            args.pop("page", None)
        return current_url((key, value) for key, values in args.items() for value in values)

    @app.template_filter("label")
    def label(value, enum_name: str):
        """The value's label in the page's language; each (language, enum, value) is translated once per
        process (a browse page shows ~100 labels; a lazy label goes through Flask-Babel's lookup each time)."""
        locale = get_locale()
        if locale is None:  # outside a request, e.g. Jinja folding a constant at compile time: stay lazy
            return getattr(enums, enum_name).label_of(value)
        key = (str(locale), enum_name, value)
        found = _LABELS.get(key)
        if found is None:
            found = _LABELS[key] = str(getattr(enums, enum_name).label_of(value))
        return found

    @app.template_global()
    def describe_audit(event):
        """An audit event's action, target, change and actor-less label in the reader's language."""
        from .audit_labels import describe
        return describe(event)

    @app.template_filter("localdt")
    def localdt(value, fmt: str = "%Y-%m-%d %H:%M"):
        if value is None:
            return ""
        from flask_babel import to_user_timezone
        return to_user_timezone(value).strftime(fmt)


#: (language, enum name, value) → translated label; the catalogues do not change while a process runs
_LABELS: dict[tuple[str, str, object], str] = {}


def current_url(query: Iterable[tuple[str, object]] = ()) -> str:
    """This request's page (endpoint and path arguments) with ``query``'s (key, value) pairs as its query
    string; a key may repeat. The query is encoded here, never passed to ``url_for`` as keywords: those
    include url_for's own (``endpoint``, ``_anchor``, ``_method``, ``_external``, ``_scheme``), which a
    visitor's ``?endpoint=x`` must not reach. The page's own address is built once per request (a browse
    page links every facet value and page number through here)."""
    base = g.get("_current_url_base")
    if base is None:
        base = g._current_url_base = url_for(request.endpoint, **(request.view_args or {}))
    encoded = urlencode([(key, str(value)) for key, value in query])
    return f"{base}?{encoded}" if encoded else base


# Jinja's "newstyle" gettext semantics (autoescape-aware, always %-formatted), bound to one catalogue.
def _gettext_with(translations):
    @pass_context
    def gettext(context, string, **variables):
        text = translations.ugettext(string)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables
    return gettext


def _ngettext_with(translations):
    @pass_context
    def ngettext(context, singular, plural, num, **variables):
        variables.setdefault("num", num)
        text = translations.ungettext(singular, plural, num)
        return (Markup(text) if context.eval_ctx.autoescape else text) % variables
    return ngettext
