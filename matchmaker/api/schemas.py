"""JSON schemas of the API: the single source for validation, serialization and the OpenAPI document.

* Request bodies are derived from the listing forms (``NeedForm``, ``CapabilityForm``) — field types, enums,
  lengths, ranges and required fields — and validated by those same forms, so a rule lives in one place.
  The API first checks JSON types against the derived schema (a form would silently coerce ``5`` to
  ``"5"``), then runs the form. Unknown fields are **rejected** (400, listed under ``fields``), matching
  ``additionalProperties: false`` in the document.
* Responses are produced by ``dump(schema, obj, computed)``, which emits exactly the properties the schema
  declares, so the document cannot drift from what is served.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from wtforms import (DateField, HiddenField, IntegerField, SelectField, SelectMultipleField, StringField,
                     SubmitField, TextAreaField)
from wtforms.fields.core import UnboundField
from wtforms.validators import DataRequired, Email, Length, NumberRange, Regexp

from ..core.access import MAX_PAGE  # noqa: F401  (the pages' bound, re-exported for the API)
from ..core.enums import CapabilityKind, CoopMode, HubCity, Industry, Language, ListingStatus, Visibility
from ..listings.forms import CapabilityForm, NeedForm
from ..matching.confidence import BANDS
from ..pairings.models import ContractType, DeclineReason, PairingSide, PairingState
from ..suggestions.evidence import REASON_KEYS

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 20
MAX_MATCHES = 50


# --- helpers --------------------------------------------------------------------------------------------

def S(type_, **kw) -> dict:
    return {"type": type_, **kw}


def nullable(schema: dict) -> dict:
    t = schema.get("type")
    if t is None:
        return {"anyOf": [schema, {"type": "null"}]}
    types = t if isinstance(t, list) else [t]
    out = {**schema, "type": [*types, "null"] if "null" not in types else types}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def enum(enum_cls) -> dict:
    return S("string", enum=enum_cls.values())


def obj(properties: dict, required: list[str] | None = None, **kw) -> dict:
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required, "additionalProperties": False, **kw}


DATETIME = S("string", format="date-time")
DATE = S("string", format="date")
INT = S("integer")
STR = S("string")


# --- errors and pages -----------------------------------------------------------------------------------

ERROR = {
    "type": "object", "required": ["error", "reason", "status"],
    "properties": {
        "error": S("string", description="Short title of the error"),
        "reason": S("string", description="Why the request was refused, for people"),
        "status": S("integer", description="The HTTP status, repeated"),
        "fields": {"type": "object", "description": "Per-field messages (validation errors only)",
                   "additionalProperties": {"type": "array", "items": STR}},
    },
    "additionalProperties": False,
}


def page_of(item: dict) -> dict:
    return obj({
        "items": {"type": "array", "items": item},
        "page": S("integer", minimum=1), "per_page": S("integer", minimum=1, maximum=MAX_PER_PAGE),
        "total": S("integer", minimum=0),
        "next": nullable(S("string", description="URL of the next page, null on the last")),
        "prev": nullable(S("string", description="URL of the previous page, null on the first")),
    })


# --- listings (responses) -----------------------------------------------------------------------------

ORG_REF = obj({"id": INT, "name": STR})

LISTING_COMMON = {
    "id": INT, "title": STR, "status": enum(ListingStatus),
    "hub_city": nullable(enum(HubCity)), "region": nullable(STR),
    "coop_modes": {"type": "array", "items": enum(CoopMode)},
    "language": enum(Language),
    "organization": nullable(ORG_REF),
    "return_reason": nullable(S("string", description="The coordinator's reason; owners and coordinators "
                                                      "only, otherwise null")),
    "created_at": DATETIME, "updated_at": DATETIME,
    "submitted_at": nullable(DATETIME), "published_at": nullable(DATETIME), "closed_at": nullable(DATETIME),
    "version": S("integer", description="Optimistic lock: send it back in a PATCH to refuse a lost update"),
    "url": S("string", description="The listing's web page"),
}

NEED_CONTACT = obj({"name": nullable(STR), "phone": nullable(STR), "email": nullable(STR)})
CAPABILITY_CONTACT = obj({"expert": nullable(STR), "posted_by": nullable(STR), "organization": nullable(STR)})

NEED = obj({
    **LISTING_COMMON,
    "industry": enum(Industry), "background": STR, "problems": STR, "targets": STR,
    "budget_min": nullable(INT), "budget_max": nullable(INT), "deadline": nullable(DATE),
    "visibility": enum(Visibility),
    "contact": nullable({**NEED_CONTACT, "description": "Only for the owner's organization and coordinators"}),
}, description="A technology need (技术需求)")

CAPABILITY = obj({
    **LISTING_COMMON,
    "kind": enum(CapabilityKind), "summary": STR, "description": STR, "field": enum(Industry),
    "trl": nullable(S("integer", minimum=1, maximum=9)), "ip": nullable(STR), "expert_id": nullable(INT),
    "contact": nullable({**CAPABILITY_CONTACT, "description": "Only for signed-in users"}),
}, description="A capability: research achievement, expertise, shared instrument or platform")

MATCH = obj({
    "capability": CAPABILITY,
    "score": S("number"),
    "confidence": S("number", minimum=0, maximum=1,
                    description="Estimated probability that the capability is relevant (calibrated)"),
    "band": S("string", enum=list(BANDS),
              description="strong: a match; possible: might be related; weak (below the confidence floor) is "
                          "never returned while the floor is on, as it is by default"),
    "components": {"type": "object", "additionalProperties": S("number")},
    "reasons": {"type": "array", "description": "What speaks for the match in plain words, as the pages show it "
                "(the language of the request), with the component's number",
                "items": obj({"key": S("string", enum=list(REASON_KEYS)), "label": STR, "value": S("number")})},
    "evidence": nullable({"type": "object", "properties": {
        "query_sentence": STR, "doc_sentence": STR, "sentence_similarity": S("number"),
        "shared_terms": {"type": "array", "items": STR}, "query_text_index": INT}}),
})

MATCHES = obj({
    "need_id": INT,
    "matching": S("string", enum=["on", "off"], description="off: the matching engine is disabled here"),
    "state": S("string", enum=["strong_match", "no_strong_match", "matching_off"],
               description="no_strong_match: no good match yet (no item is strong; the items, if any, might "
                           "be related)"),
    "items": {"type": "array", "items": MATCH},
})

# --- pairings -------------------------------------------------------------------------------------------

PAIRING_RESPONSE = obj({"side": enum(PairingSide), "decision": S("string", enum=["interested", "declined"]),
                        "reason": nullable(enum(DeclineReason)), "created_at": DATETIME})

PAIRING = obj({
    "id": INT, "state": enum(PairingState),
    "origin": S("string", enum=["engine", "coordinator", "need", "capability"]),
    "need": obj({"id": INT, "title": nullable(STR)}),
    "capability": nullable(obj({"id": INT, "title": nullable(STR)})),
    "expert_id": nullable(INT),
    "match_score": nullable(S("number")),
    "sides": {"type": "array", "items": enum(PairingSide), "description": "The caller's sides (empty for "
                                                                          "coordinators)"},
    "responses": {"type": "array", "items": PAIRING_RESPONSE},
    "judged_at": nullable(DATETIME), "judgment_comment": nullable(STR),
    "meeting_at": nullable(DATETIME), "meeting_place": nullable(STR),
    "contract_type": nullable(enum(ContractType)),
    "contract_amount": nullable(S("string", description="Decimal amount in CNY, as a string")),
    "outcome_note": nullable(STR), "outcome_at": nullable(DATETIME),
    "created_at": DATETIME, "updated_at": DATETIME,
}, description="A pairing of a need with a capability or an expert")


# --- request bodies, derived from the forms -----------------------------------------------------------

#: form fields that are not listing data (buttons, the version hidden field, the poster select)
FORM_SKIP = {"version", "organization_id", "save_draft", "save_submit", "csrf_token"}


def _unbound_fields(form_cls) -> list[tuple[str, UnboundField]]:
    fields = [(name, getattr(form_cls, name)) for name in dir(form_cls)
              if not name.startswith("_") and isinstance(getattr(form_cls, name, None), UnboundField)]
    return sorted(fields, key=lambda f: f[1].creation_counter)


def _choices(unbound: UnboundField) -> list[str]:
    return [value for value, _label in unbound.kwargs.get("choices", []) if value != ""]


def field_schema(unbound: UnboundField) -> tuple[dict, bool]:
    """JSON schema of one WTForms field and whether the form requires it."""
    cls = unbound.field_class
    validators = list(unbound.kwargs.get("validators", []))
    if issubclass(cls, SelectMultipleField):
        schema = {"type": "array", "items": S("string", enum=_choices(unbound))}
    elif issubclass(cls, SelectField):
        schema = S("string", enum=_choices(unbound))
    elif issubclass(cls, IntegerField):
        schema = S("integer")
    elif issubclass(cls, DateField):
        schema = S("string", format="date")
    elif issubclass(cls, (StringField, TextAreaField, HiddenField)):
        schema = S("string")
    else:  # pragma: no cover - a new field type must be mapped here
        raise TypeError(f"no JSON type for {cls.__name__}")
    required = False
    for v in validators:
        if isinstance(v, DataRequired):
            required = True
            if schema["type"] == "array":
                schema["minItems"] = 1
            elif schema["type"] == "string" and "enum" not in schema:
                schema["minLength"] = 1
        elif isinstance(v, Length):
            if v.min is not None and v.min > 0:
                schema["minLength"] = v.min
            if v.max is not None and v.max >= 0:
                schema["maxLength"] = v.max
        elif isinstance(v, NumberRange):
            if v.min is not None:
                schema["minimum"] = v.min
            if v.max is not None:
                schema["maximum"] = v.max
        elif isinstance(v, Email):
            schema["format"] = "email"
        elif isinstance(v, Regexp):
            schema["pattern"] = v.regex.pattern
    if unbound.kwargs.get("default") is not None:
        schema["default"] = unbound.kwargs["default"]
    if not required and unbound.kwargs.get("default") is None:
        # a field with a default is left out to get it; null would read as "use the default" and, in a
        # PATCH, silently reset the stored value (a coordinators-only need turned public)
        schema = nullable(schema)
    return schema, required


def input_schema(form_cls, *, partial: bool = False, extra: dict | None = None) -> dict:
    """The request body a form accepts. ``partial``: nothing required (PATCH sends only what changes)."""
    props, required = {}, []
    for name, unbound in _unbound_fields(form_cls):
        if name in FORM_SKIP or issubclass(unbound.field_class, SubmitField):
            continue
        props[name], req = field_schema(unbound)
        if req:
            required.append(name)
    props.update(extra or {})
    return {"type": "object", "properties": props, "required": [] if partial else required,
            "additionalProperties": False}


POSTER = {"organization_id": nullable(S("integer", description=(
    "Post on behalf of this organization (one of yours); 0 = in your own name as an expert (capabilities "
    "only). Default: your first eligible organization.")))}
VERSION = {"version": nullable(S("integer", description="The version you edited; 409 if it changed since"))}

NEED_CREATE = input_schema(NeedForm, extra=POSTER)
NEED_PATCH = input_schema(NeedForm, partial=True, extra=VERSION)
CAPABILITY_CREATE = input_schema(CapabilityForm, extra=POSTER)
CAPABILITY_PATCH = input_schema(CapabilityForm, partial=True, extra=VERSION)
#: any extra members are refused on the body of ``/submit`` (it takes none)
EMPTY_BODY = {"type": "object", "properties": {}, "additionalProperties": False}


# --- JSON type checks (before the form) and a minimal structural validator ------------------------------

_PY_TYPES = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,),
             "array": (list,), "object": (dict,), "null": (type(None),)}


def type_ok(value, schema: dict) -> bool:
    types = schema.get("type")
    if types is None:
        return True
    types = types if isinstance(types, list) else [types]
    for t in types:
        if isinstance(value, bool) and t in ("integer", "number"):
            continue
        if isinstance(value, _PY_TYPES[t]):
            return True
    return False


def check_types(body: dict, schema: dict) -> dict[str, list[str]]:
    """Per-field errors for unknown members and wrong JSON types (values are then checked by the form)."""
    from flask_babel import gettext as _
    errors: dict[str, list[str]] = {}
    props = schema["properties"]
    for name, value in body.items():
        if name not in props:
            errors[name] = [_("Unknown field.")]
            continue
        sub = props[name]
        if not type_ok(value, sub):
            errors[name] = [_("Expected %(type)s.", type=" or ".join(
                sub["type"] if isinstance(sub["type"], list) else [sub["type"]]))]
        elif isinstance(value, list) and "items" in sub and not all(type_ok(v, sub["items"]) for v in value):
            errors[name] = [_("Every item must be %(type)s.", type=sub["items"]["type"])]
    return errors


def validate(instance, schema: dict, path: str = "$") -> list[str]:
    """Minimal JSON-schema check (type, enum, required, properties, additionalProperties, items, anyOf,
    minimum/maximum, min/maxLength), enough to test that responses conform to the declared schemas."""
    problems: list[str] = []
    if "anyOf" in schema:
        if all(validate(instance, s, path) for s in schema["anyOf"]):
            problems.append(f"{path}: matches none of anyOf")
        return problems
    if not type_ok(instance, schema):
        return [f"{path}: {instance!r} is not of type {schema.get('type')}"]
    if "enum" in schema and instance not in schema["enum"]:
        problems.append(f"{path}: {instance!r} not in {schema['enum']}")
    if isinstance(instance, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                problems.append(f"{path}: missing {name!r}")
        for name, value in instance.items():
            if name in props:
                problems += validate(value, props[name], f"{path}.{name}")
            elif schema.get("additionalProperties") is False:
                problems.append(f"{path}: unexpected {name!r}")
            elif isinstance(schema.get("additionalProperties"), dict):
                problems += validate(value, schema["additionalProperties"], f"{path}.{name}")
    if isinstance(instance, list) and "items" in schema:
        for i, value in enumerate(instance):
            problems += validate(value, schema["items"], f"{path}[{i}]")
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            problems.append(f"{path}: {instance} < {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            problems.append(f"{path}: {instance} > {schema['maximum']}")
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            problems.append(f"{path}: shorter than {schema['minLength']}")
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            problems.append(f"{path}: longer than {schema['maxLength']}")
    return problems


# --- serialization --------------------------------------------------------------------------------------

def _plain(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "value") and isinstance(value, str):  # str enums
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def dump(schema: dict, obj_, computed: dict | None = None) -> dict:
    """Exactly the schema's properties: from ``computed`` (name → value) or else the object's attribute."""
    computed = computed or {}
    out = {}
    for name in schema["properties"]:
        out[name] = _plain(computed[name] if name in computed else getattr(obj_, name))
    return out
