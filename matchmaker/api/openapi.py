"""The OpenAPI 3.1 document of ``/api/v1``, built from ``schemas`` (the same definitions the views use to
validate input and serialize output) and the listings' facet table. ``tests/api/test_api.py`` checks that every
``/api/v1`` route is described here and nothing else is."""
from __future__ import annotations

from ..core.enums import CoopMode, HubCity, Industry, Language
from ..listings.queries import FACETS
from ..listings.models import Capability, Need
from ..pairings.models import PairingState
from . import schemas as s

PREFIX = "/api/v1"


def _param(name, schema, where="query", required=False, description=""):
    p = {"name": name, "in": where, "required": required, "schema": schema}
    if description:
        p["description"] = description
    return p


ID = _param("listing_id", {"type": "integer", "minimum": 1}, "path", True)
PAIRING_ID = _param("pairing_id", {"type": "integer", "minimum": 1}, "path", True)
PAGING = [
    _param("page", {"type": "integer", "minimum": 1, "maximum": s.MAX_PAGE, "default": 1}),
    _param("per_page", {"type": "integer", "minimum": 1, "maximum": s.MAX_PER_PAGE,
                        "default": s.DEFAULT_PER_PAGE}, description="400 beyond the bounds"),
]


def _filters(model) -> list[dict]:
    params = [_param(arg, s.enum(enum_cls)) for arg, _col, enum_cls in FACETS[model]]
    params.append(_param("coop_mode", s.enum(CoopMode), description="Listings offering this cooperation mode"))
    params.append(_param("q", {"type": "string", "maxLength": 200},
                         description="Keywords; every word must appear (unknown query parameters are ignored)"))
    return params


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict:
    texts = {400: "Invalid input (per-field messages in `fields`), a body that is not valid JSON (malformed or "
                  "nested too deeply), or a missing CSRF header on a cookie session",
             401: "Missing, invalid, revoked or expired token, or a deactivated account",
             403: "Not allowed (the listing is visible to you but not yours to change)",
             404: "Not found, or not visible to you (no existence leak)",
             409: "Refused by the workflow, or changed by someone else meanwhile (version)",
             413: "Body too large", 429: "Too many requests"}
    return {str(c): _json(_ref("Error"), texts[c]) for c in codes}


COMMON_ERRORS = (401, 429)


def _op(op_id: str, summary: str, ok: tuple[str, dict, str], params=(), body: str | None = None,
        errors=(), security=True) -> dict:
    code, schema, desc = ok
    op = {"operationId": op_id, "summary": summary, "parameters": list(params),
          "responses": {code: _json(schema, desc), **_errors(*sorted(set(errors) | set(COMMON_ERRORS
                                                                                        if security else ())))}}
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    if not security:
        op["security"] = []
    return op


def _listing_paths(slug: str, name: str, model, schema_name: str) -> dict:
    create, patch = f"{schema_name}Create", f"{schema_name}Patch"
    page = {"$ref": f"#/components/schemas/{schema_name}Page"}
    return {
        f"{PREFIX}/{slug}": {
            "get": _op(f"list_{slug}", f"Published {slug} visible to you", ("200", page, "A page of " + slug),
                       [*PAGING, *_filters(model)], errors=(400,)),
            "post": _op(f"create_{name}", f"Create a draft {name}", ("201", _ref(schema_name), "The new draft"),
                        body=create, errors=(400, 403, 409, 413)),
        },
        f"{PREFIX}/{slug}/{{listing_id}}": {
            "get": _op(f"get_{name}", f"One {name}", ("200", _ref(schema_name), f"The {name}"), [ID],
                       errors=(404,)),
            "patch": _op(f"update_{name}", f"Change some fields of your {name} (a published one goes back to "
                                           "review)", ("200", _ref(schema_name), f"The updated {name}"), [ID],
                         body=patch, errors=(400, 403, 404, 409, 413)),
        },
        f"{PREFIX}/{slug}/{{listing_id}}/submit": {
            "post": _op(f"submit_{name}", f"Submit your draft or returned {name} for review",
                        ("200", _ref(schema_name), f"The submitted {name}"), [ID], errors=(400, 403, 404, 409)),
        },
    }


def build_document() -> dict:
    paths = {
        **_listing_paths("needs", "need", Need, "Need"),
        **_listing_paths("capabilities", "capability", Capability, "Capability"),
        f"{PREFIX}/needs/{{listing_id}}/matches": {
            "get": _op("need_matches", "Ranked capabilities for a need you may see",
                       ("200", _ref("Matches"), "Matches with score, components and evidence; never a "
                                                "capability of the need's own organization, nor one of an expert "
                                                "who works for it or declared a conflict of interest with it (the "
                                                "pairing rules); `matching: off` and no items when the engine is "
                                                "disabled. Each item has a calibrated `confidence` and its "
                                                "`band` (strong, possible); results below the confidence floor "
                                                "are never returned. `state: no_strong_match` when no item is "
                                                "strong (no good match yet). `reasons` names what speaks for "
                                                "the match in plain words (same meaning, shared terms, "
                                                "cross-language, similar results, feedback) as the pages do; "
                                                "`evidence.shared_terms` holds content words only"),
                       [ID, _param("k", {"type": "integer", "minimum": 1, "maximum": s.MAX_MATCHES, "default": 10}),
                        _param("hub_city", s.enum(HubCity)), _param("coop_mode", s.enum(CoopMode)),
                        _param("field", s.enum(Industry)), _param("language", s.enum(Language))],
                       errors=(400, 404)),
        },
        f"{PREFIX}/pairings": {
            "get": _op("list_pairings", "Pairings you are a party to (or oversee as a coordinator)",
                       ("200", _ref("PairingPage"), "A page of pairings"),
                       [*PAGING, _param("state", s.enum(PairingState))], errors=(400,)),
        },
        f"{PREFIX}/pairings/{{pairing_id}}": {
            "get": _op("get_pairing", "One pairing you are a party to", ("200", _ref("Pairing"), "The pairing"),
                       [PAIRING_ID], errors=(404,)),
        },
        f"{PREFIX}/openapi.json": {
            "get": _op("openapi", "This document", ("200", {"type": "object"}, "OpenAPI 3.1 document"),
                       security=False),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Matchmaker (科创对接) API", "version": "1.0.0",
            "description": (
                "Technology needs, capabilities, matches and pairings, with the same permission rules as the "
                "web pages. Authenticate with a personal API token (profile → API tokens): "
                "`Authorization: Bearer mmk_…`. Requests authenticated by the session cookie instead must send "
                "the page's CSRF token in `X-CSRFToken` on every POST/PATCH. Errors are "
                "`{error, reason, status}` (+ `fields` for validation errors). Request bodies reject unknown "
                "members (400); unknown query parameters are ignored."),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "mmk_…",
                                               "description": "Personal API token"}},
            "schemas": {
                "Error": s.ERROR,
                "Need": s.NEED, "NeedPage": s.page_of(_ref("Need")),
                "NeedCreate": s.NEED_CREATE, "NeedPatch": s.NEED_PATCH,
                "Capability": s.CAPABILITY, "CapabilityPage": s.page_of(_ref("Capability")),
                "CapabilityCreate": s.CAPABILITY_CREATE, "CapabilityPatch": s.CAPABILITY_PATCH,
                "Matches": s.MATCHES,
                "Pairing": s.PAIRING, "PairingPage": s.page_of(_ref("Pairing")),
            },
        },
    }
