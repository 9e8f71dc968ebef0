"""HTTP headers read without the email package, in the daemon's process: the same messages, a fifth of the CPU.

``http.server`` (every request the daemon and the Lambda workers' Runtime APIs serve) and ``http.client`` (the
daemon's own calls, and the answers they read) read a head with :func:`http.client.parse_headers`, which hands
the text to :mod:`email`'s feed parser: about 0.1 ms a request, three requests per Lambda invoke. A head of plain
``Name: value`` lines, every one ended by CRLF (what every HTTP client sends), is read here into the same
:class:`http.client.HTTPMessage` (the same ``_headers``, payload and defects, the values as email's ``compat32``
policy keeps them); anything else (folded lines, bare LF, a missing colon, a head cut short) goes to the email
parser as before. :func:`install` makes this the process's ``http.client.parse_headers``; only the daemon
calls it (never a process the lab's code runs in).
"""
from __future__ import annotations

import email.parser
import http.client
import re
from typing import Any, BinaryIO

_FIELD = re.compile(r"[\041-\071\073-\176]+:")  # a field name as the email parser's headerRE reads one, and its colon
_original = http.client.parse_headers


def parse_headers(fp: BinaryIO, _class: Any = http.client.HTTPMessage) -> Any:
    """:func:`http.client.parse_headers`, with plain heads read without the email parser."""
    lines = http.client._read_headers(fp)  # type: ignore[attr-defined]  # the stdlib's own reader, limits and all
    text = b"".join(lines).decode("iso-8859-1")
    message = _plain(lines, text, _class)
    return message if message is not None else email.parser.Parser(_class=_class).parsestr(text)


def _plain(lines: list[bytes], text: str, _class: Any) -> Any:
    """The message of a head of plain CRLF-ended ``Name: value`` lines ended by an empty line, or None."""
    if not lines or lines[-1] != b"\r\n" or text.count("\n") != len(lines) or text.count("\r") != len(lines) \
            or not all(line.endswith(b"\r\n") for line in lines):
        return None
    headers = []
    for line in text.split("\r\n")[:-2]:  # (the empty line ends the head; the split leaves an empty tail)
        if _FIELD.match(line) is None:
            return None
        name, value = line.split(":", 1)
        headers.append((name, value.lstrip(" \t")))
    message = _class()
    message._headers = headers  # what the feed parser's set_raw gives (compat32: the value, CRLF stripped)
    message.set_payload("")  # the feed parser's payload of a message without a body
    return message


def install() -> None:
    """Read this process's HTTP heads with :func:`parse_headers` (``http.server`` and ``http.client`` look it up
    in :mod:`http.client` on every request)."""
    http.client.parse_headers = parse_headers  # type: ignore[assignment]
