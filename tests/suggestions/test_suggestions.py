"""The posting assistant's input checks (/assist/need): every refusal is the app's JSON error
{error, reason, status} with a translated reason, never a 500 (the engine stays off here: tests/matching_service/test_matching_app.py
covers the suggestions themselves)."""
from __future__ import annotations

import pytest

from matchmaker.suggestions.views import MAX_ASSIST_CHARS

DEEP = "[" * 50000 + "]" * 50000


@pytest.mark.parametrize("body,status,error,reason", [
    (DEEP, 400, "Bad request", "The JSON is nested too deeply."),
    ('{"title": ' + "[" * 50000 + "]" * 50000 + "}", 400, "Bad request", "The JSON is nested too deeply."),
    ("not json", 400, "Bad request", "The body is not valid JSON."),
    ("[]", 400, "Bad request", "Send a JSON object."),
    ('{"title": 5}', 400, "Invalid input", "The title, background, problems and targets must be text."),
    ('{"problems": ["x"]}', 400, "Invalid input", "The title, background, problems and targets must be text."),
    ('{"title": "%s"}' % ("x" * (MAX_ASSIST_CHARS + 1)), 413, "Text too long",
     f"The title, background, problems and targets may have at most {MAX_ASSIST_CHARS} characters together."),
])
def test_assistant_refusals_are_app_errors(client_as, body, status, error, reason):
    """Is each bad assistant request answered with its status and the app's {error, reason, status} body, with a
    human reason instead of a code, and is JSON nested too deeply a 400 rather than a 500?"""
    response = client_as("enterprise").post("/assist/need?lang=en", data=body, content_type="application/json")
    assert response.status_code == status
    assert response.get_json() == {"error": error, "reason": reason, "status": status}


def test_assistant_refusal_is_translated(client_as):
    """Is the reason given in the visitor's language (Chinese by default)?"""
    response = client_as("enterprise").post("/assist/need", data="[]", content_type="application/json")
    assert response.get_json() == {"error": "请求无效", "reason": "请发送 JSON 对象。", "status": 400}


def test_assistant_accepts_text_at_the_limit(client_as):
    """Is a need of exactly the maximum length still checked (200 with warnings)?"""
    response = client_as("enterprise").post("/assist/need?lang=en", json={
        "title": "x" * (MAX_ASSIST_CHARS - 10), "problems": "y" * 10, "background": None, "exclude_id": 3})
    assert response.status_code == 200
    assert set(response.get_json()) == {"warnings", "similar"}
