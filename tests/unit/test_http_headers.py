"""The daemon's reader of HTTP heads gives the messages the email parser gives, for any head."""
from __future__ import annotations

import email.parser
import http.client
import io

from hypothesis import given, settings
from hypothesis import strategies as st

from labkit.localcloud.core import http_headers

NAMES = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=12)
VALUES = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=20)
SEPARATORS = st.sampled_from([":", ": ", ":\t", ":  "])
ENDINGS = st.sampled_from(["\r\n", "\r\n", "\r\n", "\n", "\r\n "])


def _state(message: http.client.HTTPMessage) -> dict:
    """A message's attributes (its defects by kind: a defect is equal only to itself)."""
    return {**message.__dict__, "defects": [type(d) for d in message.defects]}


def _same(raw: bytes) -> None:
    fp = io.BytesIO(raw + b"BODY")
    ours = http_headers.parse_headers(fp)
    rest = fp.read()
    expected_fp = io.BytesIO(raw + b"BODY")
    expected = http_headers._original(expected_fp)
    assert type(ours) is type(expected)
    assert _state(ours) == _state(expected)
    assert rest == expected_fp.read()  # the body is left unread, as the stdlib leaves it


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(NAMES, SEPARATORS, VALUES, ENDINGS), max_size=8), st.sampled_from(["\r\n", "\n", ""]))
def test_any_head_reads_as_the_email_parser_reads_it(fields, end):
    raw = "".join(f"{name}{sep}{value.replace(chr(10), '').replace(chr(13), '')}{ending}"
                  for name, sep, value, ending in fields) + end
    _same(raw.encode("iso-8859-1"))


def test_what_sdks_send_is_read_without_the_email_parser(monkeypatch):
    raw = (b"Host: 127.0.0.1:4566\r\nX-Amz-Date: 20261204T190000Z\r\nContent-Length: 12\r\n"
           b"Authorization: AWS4-HMAC-SHA256 Credential=AKIA/20261204/us-east-1/lambda/aws4_request, "
           b"SignedHeaders=host;x-amz-date, Signature=abc\r\nEmpty:\r\nUser-Agent: Boto3/1.44 \xe9\r\n\r\n")
    _same(raw)

    def refuse(*_args, **_kwargs):
        raise AssertionError("the email parser read a plain head")

    monkeypatch.setattr(email.parser.Parser, "parsestr", refuse)
    message = http_headers.parse_headers(io.BytesIO(raw))
    assert message["content-length"] == "12" and message.get_all("empty") == [""]
    assert message["user-agent"] == "Boto3/1.44 \xe9"


def test_folded_and_bare_lf_heads_go_to_the_email_parser():
    for raw in (b"A: 1\r\n folded\r\n\r\n", b"A: 1\nB: 2\n\n", b"NoColon\r\n\r\n", b"A: 1\r\n"):
        _same(raw)
