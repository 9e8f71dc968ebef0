"""The class page: a JupyterHub service for the instructor (Hub admins), as jupyterhub-idle-culler is a service.

Started by the Hub (classroom/jupyterhub_config.py) at ``/services/class/``; a browser reaches it through the Hub's
OAuth (``HubOAuth``): only users holding ``access:services!service=class`` (the Hub's admins) see a page of it.
What it serves:

* ``/``: one row per student: server and lab up/down, last activity, each step's checks (passed/total), each
  "Your turn" task (own work / reference solution / handed out / not yet), the lab report's time; the actions
  "reset this lab" (empty, or a checkpoint) and "send notebook updates";
* ``grades.csv`` (Canvas's gradebook import format) and ``grades.json``; ``verify`` (is this report as sealed?);
* for the students' labs (their server's token identifies them; nothing else is accepted): ``api/records``
  (a task check, a claim the ledger weighs: class_ledger.py) and ``api/sign`` (seal a lab report).

It runs as root, as the Hub does, and acts in a student's account only through class_probe.Hands (a child
process as that student). Its state (the ledger, the seal key) is in ``<ORDERS_HUB_STATE>/class``, mode 0700.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

from jupyterhub.services.auth import (
    HubOAuth,
    HubOAuthCallbackHandler,
    HubOAuthenticated,
)
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web

sys.path.insert(0, str(Path(__file__).resolve().parent))
from class_grades import CATALOGUE_CODE, class_table, grades_csv, student_row
from class_ledger import Ledger, now
from class_page import page_html, verify_html
from class_probe import Hands

ROOT = Path(os.environ.get("ORDERS_LAB_ROOT") or Path(__file__).resolve().parents[1])
sys.path.insert(0, str(ROOT))
from labkit import report_seal  # noqa: E402  (stdlib only: no pandas, no boto3 in this process)

log = logging.getLogger("orders-class")
# A look at a lab costs about 3 CPU-seconds (the probe 2, the lab's cloud answering 1; docs/classroom.md):
POLL_SECONDS = float(os.environ.get("ORDERS_CLASS_POLL_SECONDS", "300"))  # each running lab, this often
FRESH_SECONDS = 60  # a page load asks again of running labs looked at longer ago than this (waiting 5 s at most)
MAX_REPORT = 40 * 1024 * 1024


class Class:
    """The service's state and work: the ledger, the key, the Hub's roster, the probes."""

    def __init__(self, state: Path, root: Path, python: Path, course: str | None) -> None:
        self.state = state
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.ledger = Ledger(state / "ledger.sqlite")
        self.key = self._key(state / "seal.key")
        self.hands = Hands(state, root, python)
        self.root, self.python, self.course = root, python, course
        self.api = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
        self.token = os.environ["JUPYTERHUB_API_TOKEN"]
        self.catalogue: dict[str, Any] = {"tasks": {}, "steps": {}}
        self.busy: dict[str, asyncio.Task] = {}
        self.handed_out: set[str] = set()

    @staticmethod
    def _key(path: Path) -> bytes:
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(secrets.token_bytes(32))
        return path.read_bytes()

    async def load_catalogue(self) -> None:
        """The tasks' and steps' titles, from the install (a child process: this one stays small)."""
        proc = await asyncio.create_subprocess_exec(str(self.python), "-c", CATALOGUE_CODE, str(self.root),
                                                    stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        self.catalogue = json.loads(out)

    async def roster(self) -> list[dict[str, Any]]:
        """The Hub's users who are not admins (the students), with their server and activity."""
        client, users, offset = httpclient.AsyncHTTPClient(), [], 0
        while True:
            response = await client.fetch(f"{self.api}/users?offset={offset}&limit=200",
                                          headers={"Authorization": f"token {self.token}"})
            page = json.loads(response.body)
            page = page["items"] if isinstance(page, dict) else page
            users += page
            if len(page) < 200:
                break
            offset += 200
        return sorted((u for u in users if not u.get("admin")), key=lambda u: u["name"])

    async def probe(self, student: str) -> None:
        """Look at the student's lab now (as the student) and apply what was seen to the ledger."""
        started = now()
        answer = await self.hands.probe(student)
        self.ledger.apply_probe(student, answer, handed_out=student in self.handed_out, at=started)
        self.handed_out.discard(student)

    def soon(self, student: str) -> asyncio.Task:
        """A probe of the student, or the one already under way."""
        task = self.busy.get(student)
        if task is None or task.done():
            task = self.busy[student] = asyncio.ensure_future(self.probe(student))
        return task

    async def refresh(self, students: list[str], older_than: float, wait: float) -> None:
        stale = []
        for student in students:
            seen = self.ledger.student(student)["probed_at"]
            age = time.time() - _epoch(seen) if seen else float("inf")
            if age > older_than:
                stale.append(self.soon(student))
        if stale:
            await asyncio.wait(stale, timeout=wait)

    async def poll_forever(self) -> None:
        while True:
            try:
                roster = await self.roster()
                running = [u["name"] for u in roster if _running(u)]
                await self.refresh(running, POLL_SECONDS, wait=POLL_SECONDS)
            except Exception:  # the next round tries again; the page says how old each row is
                log.exception("polling the labs failed")
            await asyncio.sleep(10)

    async def look_now(self, students: list[str] | None = None) -> None:
        """A fresh look at these students' labs (default: every running lab), waited for."""
        roster = await self.roster()
        wanted = students or [u["name"] for u in roster if _running(u)]
        await self.refresh([s for s in wanted if s in {u["name"] for u in roster}], older_than=-1, wait=600)

    async def table(self, wait: float = 5.0) -> dict[str, Any]:
        roster = await self.roster()
        await self.refresh([u["name"] for u in roster if _running(u)], FRESH_SECONDS, wait)
        return class_table(self.catalogue, [student_row(u, self.ledger.student(u["name"])) for u in roster],
                           self.ledger.events()[-30:])

    async def seal(self, student: str, lab: str, page: str) -> str:
        await self.soon(student)
        row = self.ledger.student(student)
        facts = {"student": student, "lab": lab, "signed_at": now(),
                 "tasks": {str(s): {k: t[k] for k in ("first_passed", "by", "solution_ran")}
                           for s, t in row["tasks"].items()},
                 "steps": {str(s): [v["passed"], v["total"]] for s, v in row["steps"].items()},
                 "solutions_ran": sorted(s for s, t in row["tasks"].items() if t["solution_ran"])}
        sealed = report_seal.seal(page, facts, self.key)
        self.ledger.report_signed(student, report_seal._digest(sealed), facts)
        return sealed

    async def reset(self, student: str, checkpoint: str | None, by: str) -> tuple[bool, str]:
        ok, output = await self.hands.reset(student, checkpoint)
        what = f"to checkpoint {checkpoint}" if checkpoint else "to empty"
        if ok:
            self.ledger.reset(student, what, by)
            if checkpoint:
                self.handed_out.add(student)  # what the checkpoint holds is not the student's work
            await self.soon(student)
        else:
            self.ledger.event(student, "lab reset failed", f"{what} by {by}: {output[-300:]}")
        return ok, output

    async def update_notebooks(self, students: list[str], by: str) -> dict[str, str]:
        """Each student's notebooks pulled from the course (as the student; their edits stay)."""
        results = {}
        for student in students:
            folder = str(Path(_home(student)) / "orders-lab" / "notebooks")
            try:
                _, out, err = await self.hands.run(student, "labkit.course", ["pull", str(self.course), folder],
                                                      timeout=120)
                results[student] = out.strip().splitlines()[-1] if out.strip() else err[-300:]
            except (KeyError, OSError, asyncio.TimeoutError) as exc:
                results[student] = f"failed: {exc}"
            self.ledger.event(student, "notebooks updated", f"by {by}: {results[student]}"[:300])
        return results


def _home(student: str) -> str:
    import pwd

    return pwd.getpwnam(student).pw_dir


def _running(user: dict[str, Any]) -> bool:
    server = (user.get("servers") or {}).get("")
    return bool(server and server.get("ready"))


def _epoch(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp).timestamp()


# -- the instructor's pages ------------------------------------------------------------------------------------
class InstructorHandler(HubOAuthenticated, web.RequestHandler):
    """Only users the Hub lets into this service (``access:services!service=class``: its admins)."""

    @property
    def work(self) -> Class:
        return self.settings["work"]

    def check_xsrf_cookie(self) -> None:
        """A request with a Hub token (the instructor's scripts, classctl) needs no form token: resolve the
        user first, which tells HubOAuth the request is token-authenticated."""
        if self.request.headers.get("Authorization"):
            _ = self.current_user
        super().check_xsrf_cookie()

    def who(self) -> str:
        user = self.current_user
        if not user or user.get("kind", "user") != "user":
            raise web.HTTPError(403, "the class page is for the Hub's instructors")
        return user["name"]


class PageHandler(InstructorHandler):
    @web.authenticated
    async def get(self) -> None:
        self.who()
        table = await self.work.table()
        self.finish(page_html(table, self.settings["prefix"], self.xsrf_token.decode(), self.get_argument("note", "")))


class GradesHandler(InstructorHandler):
    @web.authenticated
    async def get(self, kind: str) -> None:
        self.who()
        table = await self.work.table()
        if kind == "csv":
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            self.set_header("Content-Disposition", 'attachment; filename="orders-lab-grades.csv"')
            self.finish(grades_csv(table, os.environ.get("ORDERS_CLASS_SECTION", "")))
        else:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(table, indent=1))


class ResetHandler(InstructorHandler):
    @web.authenticated
    async def post(self) -> None:
        by = self.who()
        student = self.get_argument("student")
        checkpoint = self.get_argument("checkpoint", "").strip() or None
        if student not in {u["name"] for u in await self.work.roster()}:
            raise web.HTTPError(404, f"no student {student}")
        ok, output = await self.work.reset(student, checkpoint, by)
        if self.request.headers.get("Accept") == "application/json":
            self.finish({"ok": ok, "output": output})
            return
        note = f"{student}: lab reset {'to ' + checkpoint if checkpoint else 'to empty'}" if ok else \
            f"{student}: the reset failed: {output[-200:]}"
        self.redirect(self.settings["prefix"] + "?" + _query(note=note))


class UpdateHandler(InstructorHandler):
    @web.authenticated
    async def post(self) -> None:
        by = self.who()
        roster = [u["name"] for u in await self.work.roster()]
        wanted = self.get_argument("student", "")
        results = await self.work.update_notebooks([wanted] if wanted in roster else roster, by)
        if self.request.headers.get("Accept") == "application/json":
            self.finish(results)
            return
        self.redirect(self.settings["prefix"] + "?" + _query(note=f"notebook updates sent to {len(results)}"))


class LookHandler(InstructorHandler):
    @web.authenticated
    async def post(self) -> None:
        self.who()
        student = self.get_argument("student", "")
        await self.work.look_now([student] if student else None)
        if self.request.headers.get("Accept") == "application/json":
            self.finish({"looked": student or "every running lab"})
            return
        self.redirect(self.settings["prefix"] + "?" + _query(note=f"looked at {student or 'every running lab'}"))


class VerifyHandler(InstructorHandler):
    @web.authenticated
    def get(self) -> None:
        self.who()
        self.finish(verify_html(self.settings["prefix"], self.xsrf_token.decode(), None))

    @web.authenticated
    def post(self) -> None:
        self.who()
        files = self.request.files.get("report")
        page = files[0]["body"].decode(errors="replace") if files else self.get_argument("page", "", strip=False)
        result = report_seal.verify(page, self.work.key)
        if self.request.headers.get("Accept") == "application/json":
            self.finish({"valid": result[0], "finding": result[1], "facts": result[2]})
            return
        self.finish(verify_html(self.settings["prefix"], self.xsrf_token.decode(), result))


def _query(**values: str) -> str:
    from urllib.parse import urlencode

    return urlencode(values)


# -- what the students' labs send --------------------------------------------------------------------------------
class LabHandler(web.RequestHandler):
    """A request from a student's lab: its Hub token names the student; nothing in the body can."""

    def check_xsrf_cookie(self) -> None:  # token-authenticated only: no cookie is ever read here
        pass

    async def student(self) -> tuple[str, dict[str, Any]]:
        header = self.request.headers.get("Authorization", "")
        token = header.split(None, 1)[1] if header.lower().startswith(("token ", "bearer ")) else ""
        if not token:
            raise web.HTTPError(401, "send the Hub token of your server (JUPYTERHUB_API_TOKEN)")
        model = await HubOAuth.instance().user_for_token(token, use_cache=False, sync=False)
        if not model or model.get("kind", "user") != "user":
            raise web.HTTPError(403, "the token names no Hub user")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise web.HTTPError(400, "the body is not JSON") from exc
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the body is not a JSON object")
        if body.get("student") not in (None, model["name"]):
            self.settings["work"].ledger.event(model["name"], "claim refused",
                                               f"a record for another student ({body.get('student')!r})"[:300])
            raise web.HTTPError(403, "a lab can only send its own student's records")
        return model["name"], body


class RecordsHandler(LabHandler):
    async def post(self) -> None:
        student, body = await self.student()
        step = body.get("step")
        if not isinstance(step, int) or not 1 <= step <= 99:
            raise web.HTTPError(400, "a task record names its step (an integer)")
        work: Class = self.settings["work"]
        work.ledger.claim(student, body)
        work.soon(student)  # what the record says is weighed against what the cloud holds
        self.set_status(202)
        self.finish({"received": True, "verified_by": "the class service's own look at your lab"})


class SignHandler(LabHandler):
    async def post(self) -> None:
        student, body = await self.student()
        page, lab = body.get("page"), str(body.get("lab", ""))
        if not isinstance(page, str) or page.count(report_seal.SLOT) != 1:
            raise web.HTTPError(400, "send the page labkit report built (it has one record slot)")
        if "orders-lab-seal" in page or 'id="record"' in page:  # a record or seal of its own: not labkit's page
            raise web.HTTPError(400, "the page already carries a record or a seal")
        sealed = await self.settings["work"].seal(student, lab, page)
        self.finish({"page": sealed})


def make_app(work: Class) -> web.Application:
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/class/")
    return web.Application([
        (prefix, PageHandler),
        (url_path_join(prefix, "grades.(csv|json)"), GradesHandler),
        (url_path_join(prefix, "reset"), ResetHandler),
        (url_path_join(prefix, "update-notebooks"), UpdateHandler),
        (url_path_join(prefix, "verify"), VerifyHandler),
        (url_path_join(prefix, "look"), LookHandler),
        (url_path_join(prefix, "api/records"), RecordsHandler),
        (url_path_join(prefix, "api/sign"), SignHandler),
        (url_path_join(prefix, "oauth_callback"), HubOAuthCallbackHandler),
    ], cookie_secret=secrets.token_bytes(32), xsrf_cookies=True, work=work, prefix=prefix,
        max_body_size=MAX_REPORT)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="[orders-class %(asctime)s] %(message)s")
    state = Path(os.environ.get("ORDERS_HUB_STATE", "/srv/orders-hub"))
    python = Path(os.environ.get("ORDERS_LAB_PYTHON") or ROOT / ".venv" / "bin" / "python")
    work = Class(state / "class", ROOT, python, os.environ.get("ORDERS_HUB_COURSE"))
    url = os.environ["JUPYTERHUB_SERVICE_URL"]
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    app = make_app(work)
    app.listen(parts.port or 80, parts.hostname or "127.0.0.1", max_body_size=MAX_REPORT)
    loop = ioloop.IOLoop.current()
    loop.add_callback(work.load_catalogue)
    loop.add_callback(work.poll_forever)
    log.info("the class page at %s", url)
    loop.start()


if __name__ == "__main__":
    main()
