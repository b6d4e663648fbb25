"""Schemathesis against the app's own OpenAPI document (/api/v1/openapi.json), calling the WSGI app directly
with a real API token: every operation, generated valid and invalid input, never a server error, and every
response (errors included) conforms to the documented status codes and schemas.

Runs on SQLite and, with TEST_DATABASE_URL, on PostgreSQL (scripts/test.sh does both).
"""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from matchmaker.api import auth
from matchmaker.api.openapi import build_document
from matchmaker.core.enums import Role
from matchmaker.extensions import db
from matchmaker.pairings import operations as pairing_ops

pytestmark = pytest.mark.fuzz

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


#: the document the app serves (build_document is what /api/v1/openapi.json returns; checked below). Loaded
#: at import because schemathesis' fixture-based loader does not work with pytest 9; the WSGI app is attached
#: per test.
schema = schemathesis.openapi.from_dict(build_document())


def test_fuzzed_document_is_the_served_one(client):
    assert client.get("/api/v1/openapi.json").get_json() == build_document()


@pytest.fixture
def bearer(make):
    """An enterprise member's real token, with listings of every state around so responses carry data."""
    firm = make.org(kind="enterprise")
    member = make.user(Role.ENTERPRISE, org=firm)
    expert = make.user(Role.EXPERT, org=make.org(kind="institute"))
    need = make.need(member)
    make.need(member, status="draft")
    make.need(member, status="returned")
    cap = make.capability(expert)
    make.capability(expert, status="submitted")
    pairing_ops.propose_pairing(need, cap, by=member)
    _token, secret = auth.create_token(member, "fuzzing", 30)
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_api_conforms_and_never_fails(app, bearer, case):
    with app.app_context():  # a fresh context per call, as in production (no g shared between requests)
        response = case.call(headers=bearer, app=app)  # the WSGI app directly, no server
    case.validate_response(response, checks=CHECKS)
