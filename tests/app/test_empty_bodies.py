"""Responses without a body, behind Hypercorn as the instance runs the app: ``304 Not Modified`` and ``HEAD``.

A browser asks for ``/static/style.css`` again on every page after the first (the file is served ``no-cache``),
with ``If-None-Match`` / ``If-Modified-Since``; Hypercorn's WSGI bridge answered those 500, and the page lost its
style (flask_app/app.py: ``EmptyBodyStillAnswers``).
"""
from __future__ import annotations

import urllib.error
import urllib.request
from email.message import Message

import pytest
from app import EmptyBodyStillAnswers


def _get(url: str, method: str = "GET", **headers: str) -> tuple[int, Message, bytes]:
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


@pytest.mark.parametrize("validator_header", ["If-None-Match", "If-Modified-Since"])
def test_a_conditional_get_of_the_style_sheet_is_304(served, validator_header):
    base, _port, _stored = served
    status, headers, body = _get(f"{base}/static/style.css")
    assert status == 200 and b"--accent" in body and headers["Cache-Control"] == "no-cache"
    value = headers["ETag"] if validator_header == "If-None-Match" else headers["Last-Modified"]
    status, again, body = _get(f"{base}/static/style.css", **{validator_header: value})
    assert (status, body) == (304, b""), (status, body[:200])
    assert again["ETag"] == headers["ETag"]


def test_a_changed_or_unknown_validator_gets_the_file(served):
    base, _port, _stored = served
    status, _headers, body = _get(f"{base}/static/style.css", **{"If-None-Match": '"another-version"'})
    assert status == 200 and b"--accent" in body


def test_head_answers_with_the_headers_of_get(served):
    base, _port, _stored = served
    for path in ("/", "/static/style.css", "/healthz"):
        status, headers, body = _get(base + path, method="HEAD")
        assert (status, body) == (200, b""), path
        assert int(headers["Content-Length"]) > 0, path


def test_the_middleware_keeps_a_body_and_closes_what_the_app_returned():
    closed = []

    class Body(list):
        def close(self):
            closed.append(True)

    def empty_app(environ, start_response):
        start_response("304 NOT MODIFIED", [])
        return Body()

    def two_chunks(environ, start_response):
        start_response("200 OK", [])
        return Body([b"a", b"b"])

    assert list(EmptyBodyStillAnswers(empty_app)({}, lambda *a: None)) == [b""]
    answer = EmptyBodyStillAnswers(two_chunks)({}, lambda *a: None)
    assert list(answer) == [b"a", b"b"]
    answer.close()
    unread = EmptyBodyStillAnswers(two_chunks)({}, lambda *a: None)
    unread.close()  # a server that closes without reading (the client went away) still closes the app's body
    assert closed == [True, True]
