"""The classroom on one server, for real: JupyterHub with two throwaway students, each running the series.

Run as root from the project folder (CI runs it as `make classroom-check`, after `make test`):

    .venv/bin/python scripts/classroom_check.py

It creates two Linux accounts, starts the Hub (classroom/jupyterhub_config.py) on 127.0.0.1 with free
ports, spawns both students' servers through the Hub's REST API, runs the notebook series in each
(`labkit run` -> papermill, inside the student's own server, through a kernel of that server), and
checks what a classroom needs: orders land in the student's own database only; neither student can
read the other's lab state, database socket, secrets or keys, nor act on the other's cloud; the order
form opens through the Hub's public address; stopping one student's server leaves the other working; and a
server stopped as the Hub's idle culler stops it, then started again, finds its student's lab and tasks intact.
Everything it creates (accounts, homes, processes, the Hub) is removed at the end.
"""
from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHP = ROOT / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
SERIES_TIMEOUT = 900
RESULT = "CLASSROOM-RESULT:"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Finished(Exception):
    """Nothing more to check (a shorter series was asked for, or the series failed)."""


class Check:
    """The table of what was checked, printed at the end; any failure fails the script."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, bool, str]] = []

    def add(self, name: str, passed: bool, detail: Any = "") -> None:
        self.rows.append((name, bool(passed), str(detail)[:300]))
        print(f"  [{'pass' if passed else 'FAIL'}] {name}" + (f": {detail}" if detail and not passed else ""),
              flush=True)

    @property
    def failed(self) -> int:
        return sum(not ok for _, ok, _ in self.rows)


# -- the Hub ---------------------------------------------------------------------------------------------------
class Hub:
    def __init__(self, state: Path, root: Path, settings: dict[str, str]) -> None:
        self.state, self.root, self.settings = state, root, settings
        self.port, self.api_port, self.proxy_port = free_port(), free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = secrets.token_hex(32)
        self.cloud_port, self.app_port = free_port(), free_port()
        self.proc: subprocess.Popen | None = None

    def config(self) -> Path:
        path = self.state / "jupyterhub_config.py"
        path.write_text(f"""
load_subconfig({str(ROOT / 'classroom' / 'jupyterhub_config.py')!r})
c.JupyterHub.services.append({{"name": "classroom-check", "api_token": {self.token!r}}})
c.JupyterHub.load_roles.append({{"name": "classroom-check", "services": ["classroom-check"],
                                "scopes": ["admin:users", "admin:servers", "tokens", "list:users", "read:users"]}})
# Tests never use the default ports (4566, 5000): both students prefer the same free ones instead, so the
# second student's cloud shows the detour and both instances serve the same app port on their own addresses.
c.Spawner.environment.update({{"LABKIT_CLOUD_PORT": "{self.cloud_port}", "LABKIT_APP_PORT": "{self.app_port}"}})
""")
        return path

    def start(self) -> None:
        env = {**os.environ, "ORDERS_HUB_BIND_URL": self.url, "ORDERS_HUB_PORT": str(self.api_port),
               "ORDERS_PROXY_API_PORT": str(self.proxy_port), "ORDERS_HUB_STATE": str(self.state),
               "ORDERS_HUB_IDLE_SECONDS": "0", **self.settings}
        log = open(self.state / "hub.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "jupyterhub", "-f", str(self.config())],
                                     cwd=self.state, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the Hub exited:\n{self.log_tail()}")
            try:
                self.api("GET", "/")
                return
            except (OSError, urllib.error.URLError):
                time.sleep(0.5)
        raise RuntimeError(f"the Hub did not answer within 60 s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join((self.state / "hub.log").read_text(errors="replace").splitlines()[-lines:])

    def request(self, method: str, path: str, token: str, body: Any = None, timeout: float = 30) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        status, raw = self.request(method, "/hub/api" + path, self.token, body)
        if status >= 400:
            raise urllib.error.URLError(f"{method} {path}: {status} {raw[:300]!r}")
        return json.loads(raw) if raw else None

    def spawn(self, name: str, timeout: float = 180) -> None:
        self.api("POST", f"/users/{name}/server")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            server = self.api("GET", f"/users/{name}").get("servers", {}).get("")
            if server and server.get("ready"):
                return
            time.sleep(1)
        raise RuntimeError(f"the server of {name} did not start:\n{self.log_tail()}")

    def stop_server(self, name: str, timeout: float = 90) -> None:
        try:
            self.api("DELETE", f"/users/{name}/server")
        except urllib.error.URLError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.api("GET", f"/users/{name}").get("servers"):
            time.sleep(1)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class Student:
    """A throwaway Linux account with a server on the Hub and a kernel in it to run code as the student."""

    def __init__(self, hub: Hub | None, homes: Path) -> None:
        self.hub, self.name = hub, f"olab{secrets.token_hex(3)}"
        self.home = homes / self.name
        self.token = ""
        self.kernel = ""

    def create(self) -> None:
        subprocess.run(["useradd", "--create-home", "--home-dir", str(self.home), "--shell", "/bin/bash",
                        "--user-group", self.name], check=True, capture_output=True)
        self.account = pwd.getpwnam(self.name)

    def start(self) -> None:
        self.hub.spawn(self.name)
        self.token = self.hub.api("POST", f"/users/{self.name}/tokens",
                                  {"expires_in": 3600, "note": "classroom check"})["token"]
        status, raw = self.hub.request("POST", f"/user/{self.name}/api/kernels", self.token, {"name": "python3"})
        if status != 201:
            raise RuntimeError(f"no kernel for {self.name}: {status} {raw[:300]!r}")
        self.kernel = json.loads(raw)["id"]

    def run(self, code: str, timeout: float = 300) -> Any:
        """Execute ``code`` in the student's kernel; it prints RESULT + JSON, which is returned."""
        import websocket

        url = f"ws://127.0.0.1:{self.hub.port}/user/{self.name}/api/kernels/{self.kernel}/channels"
        ws = websocket.create_connection(url, header=[f"Authorization: token {self.token}"], timeout=timeout)
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": self.name,
                       "session": uuid.uuid4().hex, "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out: list[str] = []
        try:
            while True:
                msg = json.loads(ws.recv())
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind = msg.get("msg_type")
                if kind == "stream":
                    out.append(msg["content"]["text"])
                elif kind == "error":
                    raise RuntimeError(f"{self.name}: {msg['content']['ename']}: {msg['content']['evalue']}\n"
                                       + "".join(out)[-2000:])
                elif kind == "status" and msg["content"]["execution_state"] == "idle":
                    break
        finally:
            ws.close()
        text = "".join(out)
        for line in reversed(text.splitlines()):
            if line.startswith(RESULT):
                return json.loads(line[len(RESULT):])
        raise RuntimeError(f"{self.name}: no result in:\n{text[-2000:]}")

    def browse(self, path: str, method: str = "GET", body: Any = None) -> tuple[int, bytes]:
        """A request from the student's browser: to the Hub's public address, with the student's login."""
        return self.hub.request(method, path, self.token, body)


# -- what each student's kernel runs ---------------------------------------------------------------------------
def series_code(last: int, solutions: bool = True) -> str:
    flag = "" if solutions else ', "--no-solutions"'
    return f"""
import json, os, subprocess, sys, time
started = time.monotonic()
run = subprocess.run([sys.executable, "-m", "labkit.cli", "run", "--to", "{last}"{flag},
                      "--output-dir", os.path.expanduser("~/runs/classroom-check")],
                     capture_output=True, text=True, timeout={SERIES_TIMEOUT})
from labkit import Lab, compute
lab = Lab()
result = {{"code": run.returncode, "tail": (run.stdout + run.stderr)[-3000:], "seconds": time.monotonic() - started,
          "home": str(lab.config.home), "endpoint": lab.target.endpoint_url}}
if run.returncode == 0 and {last} >= 8:
    result.update(link=compute.browser_url(lab), url=compute.app_url(lab),
                  instance=compute.describe_instance(lab)["InstanceId"])
print({RESULT!r} + json.dumps(result))
"""


def lab_code(order_id: str) -> str:
    """What the student finds of their lab: labkit check, the tasks passed, the app's URL, an earlier order by id."""
    return f"""
import json, urllib.request
from labkit import Lab, checks, compute, tasks
lab = Lab()
frame, done = checks.all_checks(lab), tasks.tasks_frame(lab)
url = compute.app_url(lab)
with urllib.request.urlopen(url + "api/orders/{order_id}", timeout=60) as answer:
    stored = json.loads(answer.read())["stored"]
print({RESULT!r} + json.dumps({{"checks": [int(frame["passed"].sum()), len(frame)], "url": url, "order": stored,
                               "tasks": sorted(int(s) for s in done.loc[done["passed"], "step"])}}))
"""


def handout_checkpoint(root: Path, settings: dict[str, str], target: Path, app_port: int) -> dict[str, Any]:
    """What an instructor hands out (docs/classroom.md): a lab built through step 7 in a home of its own (`labkit
    up --through 7`) with the class's app port (the students' labs open that port: a lab built with another one
    fails step 3's check), saved as one checkpoint file in the class's folder, readable by every student."""
    home = Path(tempfile.mkdtemp(prefix="orders-hub-handout-"))
    env = {**os.environ, "LABKIT_HOME": str(home), "LABKIT_CLOUD_PORT": str(free_port()),
           "LABKIT_APP_PORT": str(app_port), "LABKIT_LAMBDA_PYTHON": settings["ORDERS_LAB_LAMBDA_PYTHON"]}
    python = [settings["ORDERS_LAB_PYTHON"], "-m", "labkit.cli"]
    started = time.monotonic()
    try:
        built = subprocess.run([*python, "up", "--through", "7"], env=env, cwd=root, capture_output=True, text=True,
                               timeout=SERIES_TIMEOUT)
        target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        made = subprocess.run([*python, "cloud", "snapshot", str(target)], env=env, cwd=root, capture_output=True,
                              text=True, timeout=600) if built.returncode == 0 else built
    finally:
        subprocess.run([*python, "cloud", "stop"], env=env, cwd=root, capture_output=True, timeout=120)
        shutil.rmtree(home, ignore_errors=True)
    if made.returncode == 0:
        target.chmod(0o644)  # the students restore it as themselves
    return {"ok": made.returncode == 0, "seconds": round(time.monotonic() - started),
            "output": (made.stdout + made.stderr)[-500:]}


def orders_code() -> str:
    return f"""
import json
from labkit import Lab, database
print({RESULT!r} + json.dumps(sorted(database.orders_frame(Lab())["customer_name"].tolist())))
"""


def grants_code() -> str:
    return f"""
import json
from labkit import Lab, database
print({RESULT!r} + json.dumps(database.query(Lab(), "SHOW GRANTS;").iloc[:, 0].tolist()))
"""


def intrusion_code(victim: dict) -> str:
    """What one student tries against the other: read their files, use their socket, call their cloud."""
    return f"""
import json, os, socket, urllib.request, urllib.error
import boto3, botocore.exceptions
victim = {json.dumps(victim)}
tried = {{}}
def attempt(name, fn):
    try:
        tried[name] = "allowed: " + str(fn())[:200]
    except (OSError, botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError, urllib.error.URLError) as exc:
        tried[name] = "refused: " + type(exc).__name__ + ": " + str(exc)[:200]
attempt("list lab state", lambda: os.listdir(victim["home"]))
attempt("read cloud state", lambda: open(os.path.join(victim["home"], "cloud.json")).read())
for path in victim["sockets"]:
    def connect(path=path):
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(path)
            return "connected"
    attempt("database socket " + path, connect)
session = boto3.Session(aws_access_key_id="AKIAMADEUPKEY0000000", aws_secret_access_key="made-up-secret",
                        region_name="us-east-1")
sm = session.client("secretsmanager", endpoint_url=victim["endpoint"])
attempt("get the other's database secret", lambda: sm.get_secret_value(SecretId="order-db-secret")["Name"])
ssm = session.client("ssm", endpoint_url=victim["endpoint"])
attempt("run a command on the other's instance", lambda: ssm.send_command(
    InstanceIds=[victim["instance"]], DocumentName="AWS-RunShellScript",
    Parameters={{"commands": ["id -un"]}})["Command"]["CommandId"])
def shutdown():
    req = urllib.request.Request(victim["endpoint"] + "/_labkit/shutdown", data=b"{{}}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as response:
        return response.status
attempt("stop the other's cloud", shutdown)
print({RESULT!r} + json.dumps(tried))
"""


NEEDS_IAM = ("get the other's database secret", "run a command on the other's instance")


def iam_enforced() -> bool:
    """Whether the local cloud authenticates callers (per-cloud admin keys, issue 12): then made-up keys fail."""
    import importlib.util

    return importlib.util.find_spec("labkit.localcloud.iam.auth") is not None


def order_path(link: str, hub_url: str) -> str:
    """The Hub-relative path of a link the lab shows (it may be absolute on the Hub's public address)."""
    return link[len(hub_url):] if link.startswith(hub_url) else link


# -- the run ---------------------------------------------------------------------------------------------------
def _open_to_all(path: Path) -> bool:
    path = path.resolve()
    return all(p.stat().st_mode & 0o005 == 0o005 for p in [path, *path.parents])


def _bridge_venv(base: Path, site_packages: Path) -> Path:
    """A virtual environment on the system's python3 that reads ``site_packages`` (same 3.x: same ABI)."""
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(base)], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    (base / "lib" / version / "site-packages" / "orders-lab.pth").write_text(
        f"import site; site.addsitedir({str(site_packages)!r})\n")
    return base / "bin" / "python"


def shared_install(scratch: Path) -> tuple[Path, dict[str, str]]:
    """The project as every student reads it, and the Hub settings that point there.

    On a classroom server the instructor builds it readable by all (``make setup PYTHON=/usr/bin/python3`` in
    /opt/orders-lab, see docs/classroom.md). A CI machine's project may sit in a private folder, or its
    interpreter in root's home (pyenv): then the students get a copy, and environments on the system's
    python3 that read the project's packages.
    """
    root = ROOT
    if not _open_to_all(ROOT / ".venv" / "lib"):
        root = scratch / "project"
        print(f"the project folder is private: sharing a copy in {root}", flush=True)
        subprocess.run(["cp", "-a", str(ROOT), str(root)], check=True)
        shutil.rmtree(root / ".labkit", ignore_errors=True)
    python, lambda_python = root / ".venv" / "bin" / "python", root / ".venv-lambda" / "bin" / "python"
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if not _open_to_all(python) and Path("/usr/bin/python3").exists():
        print("the project's interpreter is private: students use the system's python3 on its packages", flush=True)
        python = _bridge_venv(scratch / "venv", root / ".venv" / "lib" / version / "site-packages")
        lambda_python = _bridge_venv(scratch / "venv-lambda",
                                     root / ".venv-lambda" / "lib" / version / "site-packages")
    return root, {"ORDERS_LAB_ROOT": str(root), "ORDERS_LAB_PYTHON": str(python),
                  "ORDERS_LAB_LAMBDA_PYTHON": str(lambda_python)}


def sockets_in_tmp(uids: set[int]) -> list[str]:
    """Sockets the students own directly in the shared /tmp (a predictable, reachable place)."""
    found = []
    for entry in Path("/tmp").iterdir():
        try:
            info = entry.lstat()
        except OSError:
            continue
        if info.st_uid in uids and entry.is_socket():
            found.append(str(entry))
    return found


def processes_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")[:160]
    except OSError:
        return f"pid {pid} (gone)"


def end_processes(uid: int) -> None:
    """End what the script's throwaway account still runs (each pid by id), then wait for it to go."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_of(uid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while processes_of(uid) and time.monotonic() < deadline:
            time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", type=int, default=14, help="run the series up to this notebook (default 14)")
    parser.add_argument("--screenshot", default=None, help="keep the class page's screenshot here (PNG)")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("classroom check: run as root (it creates two Linux accounts and runs JupyterHub)", file=sys.stderr)
        return 2
    if not CHP.exists():
        subprocess.run([str(ROOT / "scripts" / "ensure-hub-proxy.sh")], check=True)
    started = time.monotonic()
    check = Check()
    state = Path(tempfile.mkdtemp(prefix="orders-hub-"))
    scratch = Path(tempfile.mkdtemp(prefix="orders-hub-shared-"))
    scratch.chmod(0o755)
    homes = Path(tempfile.mkdtemp(prefix="orders-hub-homes-"))
    homes.chmod(0o755)
    root, settings = shared_install(scratch)
    students = [Student(None, homes), Student(None, homes)]
    instructor_name, outsider_name = f"olabt{secrets.token_hex(3)}", f"olabx{secrets.token_hex(3)}"
    passwords = {instructor_name: secrets.token_urlsafe(12), outsider_name: secrets.token_urlsafe(12)}
    course = scratch / "course.git"
    handouts = scratch / "checkpoints"  # the class's checkpoints (LABKIT_CHECKPOINTS of every student's server)
    hub = Hub(state, root, {**settings, "ORDERS_HUB_ADMINS": instructor_name, "ORDERS_HUB_CHECKPOINTS": str(handouts),
                            "ORDERS_HUB_STUDENTS": ",".join(s.name for s in students),
                            "ORDERS_CLASS_PORT": str(free_port()), "ORDERS_HUB_COURSE": str(course),
                            "ORDERS_CLASS_POLL_SECONDS": "600"})
    for student in students:
        student.hub = hub
    accounts: list[str] = []
    try:
        for student in students:
            student.create()
            accounts.append(student.name)
        for name, password in passwords.items():  # the instructor, and an account nobody listed
            subprocess.run(["useradd", "--create-home", "--home-dir", str(homes / name), "--user-group", name],
                           check=True, capture_output=True)
            accounts.append(name)
            subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True, check=True, capture_output=True)
        hub.start()
        listed = {u["name"] for u in hub.api("GET", "/users")}  # ORDERS_HUB_STUDENTS: the Hub adds them at start
        check.add("the Hub knows the listed students (and only the listed accounts and the instructor)",
                  listed == {s.name for s in students} | {instructor_name}, listed)
        for student in students:
            student.start()
        print(f"Hub at {hub.url} with {', '.join(s.name for s in students)} "
              f"({time.monotonic() - started:.0f} s)", flush=True)

        # The series in both servers at once, as a class does it.
        results: dict[str, Any] = {}

        def series(student: Student) -> None:  # the first student without the reference solutions
            try:
                results[student.name] = student.run(series_code(args.to, solutions=student is not students[0]),
                                                    timeout=SERIES_TIMEOUT + 120)
            except Exception as exc:  # reported as a failed check below
                results[student.name] = {"code": -1, "tail": str(exc)}

        threads = [threading.Thread(target=series, args=(s,)) for s in students]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for student in students:
            result = results[student.name]
            check.add(f"{student.name}: the series 00-{args.to:02d} passes in the student's server",
                      result["code"] == 0, result.get("tail"))
            if result["code"] == 0:
                print(f"  series of {student.name}: {result['seconds']:.0f} s", flush=True)
        if check.failed or args.to < 14:
            raise Finished()
        a, b = students
        ra, rb = results[a.name], results[b.name]
        check.add("each lab has its own cloud", ra["endpoint"] != rb["endpoint"], (ra["endpoint"], rb["endpoint"]))
        (host_a, port_a), (host_b, port_b) = (urllib.parse.urlsplit(r["url"])[1].rsplit(":", 1) for r in (ra, rb))
        check.add("each instance has its own address for the same app port", host_a != host_b and port_a == port_b,
                  (ra["url"], rb["url"]))

        # The order form and an order, through the Hub's public address, as each student's browser sends them.
        for student, result in ((a, ra), (b, rb)):
            link = result["link"]
            check.add(f"{student.name}: the lab shows the app through the Hub",
                      f"/user/{student.name}/proxy/" in link, link)
            path = order_path(link, hub.url)
            status, page = student.browse(path)
            check.add(f"{student.name}: the order form opens through the Hub", status == 200 and b"<form" in page,
                      status)
            status, answer = student.browse(path + "api/orders", "POST", {
                "customer_name": f"hub {student.name}", "product": "Classroom", "quantity": 1, "amount": "1.00"})
            check.add(f"{student.name}: an order through the Hub is accepted", status == 201, answer[:200])
            if status == 201:
                result["order_id"] = json.loads(answer)["order_id"]
        for student in students:
            other = b if student is a else a
            names = student.run(orders_code())
            check.add(f"{student.name}: own order in own database", f"hub {student.name}" in names, names)
            check.add(f"{student.name}: the other's order is not in this database", f"hub {other.name}" not in names,
                      names)
            grants = " ".join(student.run(grants_code())).upper()
            check.add(f"{student.name}: the master user holds no SUPER, FILE or SHUTDOWN, nor ALL PRIVILEGES",
                      not any(p in grants for p in (" SUPER,", " FILE,", " SHUTDOWN,", "ALL PRIVILEGES")), grants)

        # Privacy: file modes, sockets, and each student trying the other's things with their own code.
        for student, result in ((a, ra), (b, rb)):
            home = Path(result["home"])
            check.add(f"{student.name}: lab state folder is owner-only", home.stat().st_mode & 0o077 == 0,
                      oct(home.stat().st_mode))
            check.add(f"{student.name}: home folder is owner-only", student.home.stat().st_mode & 0o077 == 0,
                      oct(student.home.stat().st_mode))
        check.add("no student socket directly in the shared /tmp",
                  not sockets_in_tmp({s.account.pw_uid for s in students}), sockets_in_tmp({s.account.pw_uid for s in students}))
        for student, victim, vres in ((a, b, rb), (b, a, ra)):
            sockets = [str(p) for p in Path(vres["home"]).rglob("*.sock")]
            check.add(f"{victim.name}: the database socket lies in the private lab folder", bool(sockets), sockets)
            tried = student.run(intrusion_code({"home": vres["home"], "sockets": sockets, "endpoint": vres["endpoint"],
                                                "instance": vres["instance"]}))
            for what, outcome in tried.items():
                name = f"{student.name} cannot {what} of {victim.name}"
                if what in NEEDS_IAM and not iam_enforced():
                    print(f"  [open] {name}: needs the local cloud's IAM enforcement (issue 12); now {outcome}",
                          flush=True)
                    continue
                check.add(name, outcome.startswith("refused"), outcome)

        # The instructor hands out a lab built through step 7 (issue 23's checkpoints), then the instructor's side:
        # the class page, grades, honest records, sealed reports, updates, a reset to empty and to that checkpoint.
        made = handout_checkpoint(root, settings, handouts / "steps-1-7.labkit-checkpoint", hub.app_port)
        check.add("the instructor makes the checkpoint steps-1-7 for the class", made["ok"], made)
        from classroom_instructor import Instructor
        from classroom_instructor import run as instructor_checks

        shot = Path(args.screenshot) if args.screenshot else scratch / "class-page.png"
        instructor_checks(check, hub, a, b, Instructor(hub, instructor_name, passwords[instructor_name]),
                          (outsider_name, passwords[outsider_name]), course, rb, order_path, shot)

        # Stopping one student's server (and with it their lab) leaves the other's working.
        hub.stop_server(a.name)
        deadline = time.monotonic() + 30
        while processes_of(a.account.pw_uid) and time.monotonic() < deadline:
            time.sleep(0.5)
        left = [_cmdline(pid) for pid in processes_of(a.account.pw_uid)]
        check.add(f"{a.name}: nothing of the stopped lab keeps running", not left, left)
        status, answer = b.browse(order_path(rb["link"], hub.url) + "api/orders", "POST", {
            "customer_name": f"after {a.name} stopped", "product": "Classroom", "quantity": 1, "amount": "2.00"})
        check.add(f"{b.name}: still takes orders after {a.name} stopped", status == 201, answer[:200])
        check.add(f"{b.name}: that order is in {b.name}'s database", f"after {a.name} stopped" in b.run(orders_code()))

        # A culled server comes back (issue 23): the idle culler stops B's server through the Hub's API (as it
        # does: DELETE /users/<name>/server; the post-stop hook stops the lab), B logs in again, and B's lab
        # starts on first use as it was: every check, every task, the app at its URL with B's earlier order.
        lab_before = b.run(lab_code(rb["order_id"]))
        hub.stop_server(b.name)
        deadline = time.monotonic() + 30
        while processes_of(b.account.pw_uid) and time.monotonic() < deadline:
            time.sleep(0.5)
        check.add(f"{b.name}: the culled server's lab is stopped", not processes_of(b.account.pw_uid),
                  [_cmdline(pid) for pid in processes_of(b.account.pw_uid)])
        b.start()
        lab_after = b.run(lab_code(rb["order_id"]), timeout=600)
        check.add(f"{b.name}: after the culled server started again, labkit check passes as before",
                  lab_after["checks"] == lab_before["checks"] and lab_after["checks"][0] == lab_after["checks"][1],
                  (lab_before["checks"], lab_after["checks"]))
        check.add(f"{b.name}: the tasks done before are still passed", lab_after["tasks"] == lab_before["tasks"]
                  and len(lab_after["tasks"]) == 13, (lab_before["tasks"], lab_after["tasks"]))
        check.add(f"{b.name}: the app answers at the same URL and finds the order placed before",
                  lab_after["url"] == lab_before["url"] and lab_after["order"], (lab_before, lab_after))
        status, answer = b.browse(order_path(rb["link"], hub.url) + "api/orders", "POST", {
            "customer_name": f"hub {b.name} again", "product": "Classroom", "quantity": 1, "amount": "3.00"})
        check.add(f"{b.name}: the restarted lab takes orders through the Hub", status == 201, answer[:200])
    except Finished:
        pass
    except Exception as exc:
        check.add("the classroom ran to the end", False, f"{type(exc).__name__}: {exc}")
        print(hub.log_tail() if (state / "hub.log").exists() else "", file=sys.stderr)
    finally:
        for student in students:
            try:
                hub.stop_server(student.name)
            except Exception:
                pass
        hub.stop()
        for name in accounts:
            try:
                end_processes(pwd.getpwnam(name).pw_uid)
            except KeyError:
                pass
            subprocess.run(["userdel", "--remove", name], capture_output=True)
        for folder in (homes, state, scratch):
            shutil.rmtree(folder, ignore_errors=True)
    print(f"classroom check took {time.monotonic() - started:.0f} s")
    print(f"classroom: {len(check.rows) - check.failed} passed, {check.failed} failed", flush=True)
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
