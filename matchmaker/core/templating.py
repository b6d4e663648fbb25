"""Template globals: enum labels, locale switch, pagination helpers."""
from __future__ import annotations

from flask import request, url_for
from flask_babel import get_locale

from . import enums


def register(app) -> None:
    @app.context_processor
    def inject_globals():
        return {
            "enums": enums,
            "current_locale": "en" if getattr(get_locale(), "language", "zh") == "en" else "zh_CN",
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
        return url_for(request.endpoint, **(request.view_args or {}), **args)

    @app.template_filter("label")
    def label(value, enum_name: str):
        return getattr(enums, enum_name).label_of(value)

    @app.template_filter("localdt")
    def localdt(value, fmt: str = "%Y-%m-%d %H:%M"):
        if value is None:
            return ""
        from flask_babel import to_user_timezone
        return to_user_timezone(value).strftime(fmt)
