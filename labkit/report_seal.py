"""The lab report's record section and its seal: what makes an edited report detectable.

``labkit report`` leaves :data:`SLOT` in the page. On a classroom Hub it sends the page to the class service,
which puts its own record of the student there (from its ledger and a fresh look at the lab, never from the
page) and seals the whole page: an HMAC-SHA256, with a key only the service holds, over its record and the
SHA-256 of the page. The seal sits in one ``<meta name="orders-lab-seal">`` element; the digest is taken with
that element's content empty, so every other byte of the page is covered. :func:`verify` (the class page's
"Verify a report", ``classctl verify``) says whether the page is as sealed. Off a Hub the section says the report
is not sealed and shows the lab's own record.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import re
from typing import Any

SLOT = "<!--orders-lab-record-->"
SEAL = re.compile(r'<meta name="orders-lab-seal" content="([A-Za-z0-9_=-]*)">')
EMPTY_SEAL = '<meta name="orders-lab-seal" content="">'
BY = {"own": "the student's own work", "solution": "the reference solution", "checkpoint": "handed out"}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def _digest(page: str) -> str:
    return hashlib.sha256(SEAL.sub(EMPTY_SEAL, page, count=1).encode()).hexdigest()


def _mac(key: bytes, facts: dict[str, Any], digest: str) -> str:
    return hmac.new(key, _canonical({"facts": facts, "digest": digest}), hashlib.sha256).hexdigest()


def record_section(facts: dict[str, Any], sealed: bool) -> str:
    """The "Record" section: who, whether solutions ran, each task's status; the seal element when sealed."""
    tasks = facts.get("tasks", {})
    rows = "".join(
        f"<tr><td>{html.escape(str(step))}</td><td>{'passed' if t.get('first_passed') else 'not yet'}</td>"
        f"<td>{html.escape(BY.get(t.get('by') or '', ''))}</td><td>{html.escape(t.get('first_passed') or '')}</td>"
        f"<td>{'yes' if t.get('solution_ran') else 'no'}</td></tr>"
        for step, t in sorted(tasks.items(), key=lambda kv: int(kv[0])))
    ran = facts.get("solutions_ran") or []
    who = (f"Sealed by the class service at {html.escape(facts.get('signed_at', ''))}: its own record of this "
           "student, from what it saw in their lab (not from this page). Verify the page on the class page "
           "(Verify a report) or with <code>classctl verify</code>." if sealed else
           "Not sealed: written away from a classroom Hub, or its class service did not answer. This is the lab's "
           "own record, which nobody can verify.")
    seal = EMPTY_SEAL if sealed else ""
    return (f'<h2 id="record">Record</h2>\n{seal}<p class="note">{who}</p>\n<table class="meta">'
            f"<tr><td><b>student</b></td><td>{html.escape(facts.get('student', ''))}</td></tr>"
            f"<tr><td><b>lab</b></td><td>{html.escape(facts.get('lab', ''))}</td></tr>"
            f"<tr><td><b>reference solutions ran</b></td><td>"
            f"{'steps ' + ', '.join(map(str, ran)) if ran else 'no'}</td></tr></table>\n"
            "<table><tr><th>task (step)</th><th>status</th><th>passed by</th><th>first passed (UTC)</th>"
            f"<th>solution ran</th></tr>{rows}</table>\n")


def seal(page: str, facts: dict[str, Any], key: bytes) -> str:
    """The page with the service's record in :data:`SLOT`, sealed with ``key``."""
    if SLOT not in page:
        raise ValueError("the page has no record slot: it is not a labkit report")
    page = page.replace(SLOT, record_section(facts, sealed=True), 1)
    digest = _digest(page)
    token = base64.urlsafe_b64encode(_canonical({"facts": facts, "digest": digest,
                                                 "mac": _mac(key, facts, digest)})).decode()
    return page.replace(EMPTY_SEAL, f'<meta name="orders-lab-seal" content="{token}">', 1)


def verify(page: str, key: bytes) -> tuple[bool, str, dict[str, Any]]:
    """(valid, what was found, the sealed record). Valid only if the seal is the service's and the page is
    byte for byte as it was sealed."""
    found = SEAL.findall(page)
    if not found:
        return False, "the report carries no seal (written away from the Hub, or the seal was removed)", {}
    if len(found) > 1:
        return False, "the report carries more than one seal: it was put together from other pages", {}
    try:
        sealed = json.loads(base64.urlsafe_b64decode(found[0].encode()))
        facts, digest, mac = sealed["facts"], sealed["digest"], sealed["mac"]
    except (ValueError, KeyError, TypeError):
        return False, "the seal cannot be read: it was edited", {}
    if not hmac.compare_digest(_mac(key, facts, digest), str(mac)):
        return False, "the seal is not this class service's (forged, edited, or from another Hub)", facts
    if _digest(page) != digest:
        return False, "the page was edited after it was sealed", facts
    return True, f"valid: sealed for {facts.get('student')} at {facts.get('signed_at')}, unchanged since", facts
