"""JupyterHub for a class on one server: one Linux account per student, each with a lab of their own.

Run as root from the project folder (after `make setup`):

    .venv/bin/jupyterhub -f classroom/jupyterhub_config.py

Students log in with their Linux account (PAM), if the instructor listed them. Each gets a single-user Jupyter
server running as their own account, their own clone of the course's notebooks in ``~/orders-lab/notebooks``
(updated at each start, their edits kept: labkit/course.py), and their own lab state in
``~/.labkit`` (mode 0700): local cloud, databases, instances, keys. The project's folder (code,
virtual environments, package mirror) is shared and read-only; the system MariaDB binary is shared.
Every URL a lab shows opens through the Hub (jupyter-server-proxy's ``/user/<name>/proxy/...``).
The instructors (admins) have the class page, a Hub service at ``/services/class/`` (classroom/class_service.py).

Settings from the environment (all optional):
    ORDERS_HUB_BIND_URL   where the Hub is served (default ``http://:8000``)
    ORDERS_HUB_PORT       the Hub's internal API port on 127.0.0.1 (default 8081)
    ORDERS_PROXY_API_PORT configurable-http-proxy's API port on 127.0.0.1 (default 8001)
    ORDERS_HUB_ADMINS     comma-separated admin accounts (the instructors: they see the class page)
    ORDERS_HUB_STUDENTS   comma-separated accounts allowed to log in; the instructors may add more in the
                          Hub's admin page. Nobody else is admitted.
    ORDERS_HUB_ALLOW_ANY_LOCAL_ACCOUNT  "yes": admit every account of this machine (opt-in, warned about)
    ORDERS_HUB_AUTHENTICATOR  another authenticator class (e.g. the university's OAuth), configured by you
    ORDERS_HUB_STATE      folder for the Hub's database, cookie secret and the class service's ledger and key
                          (default ``/srv/orders-hub``, mode 0700)
    ORDERS_HUB_COURSE     the course repository the students' notebooks are pulled from (default
                          ``/srv/orders-course.git``; the install's notebooks are published there at each start)
    ORDERS_HUB_CHECKPOINTS  the class's checkpoints, which a student's `labkit cloud restore NAME` (and the class
                          page's reset to a checkpoint) finds by name (default ``/srv/orders-checkpoints``;
                          put files made by `labkit cloud snapshot` there, readable by every account)
    ORDERS_CLASS_PORT     the class service's port on 127.0.0.1 (default 8082)
    ORDERS_CLASS_POLL_SECONDS  how often the class service looks at each running lab (default 120)
    ORDERS_CLASS_SECTION  the Section column of the grades CSV (default empty)
    ORDERS_HUB_IDLE_SECONDS  stop servers idle this long, and their labs (default 3600; 0 = never)
    ORDERS_LAB_ROOT, ORDERS_LAB_PYTHON, ORDERS_LAB_LAMBDA_PYTHON  the shared install, when not this folder
        and its .venv / .venv-lambda (every student's account must be able to read and run them)
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(os.environ.get("ORDERS_LAB_ROOT") or Path(__file__).resolve().parents[1])
VENV = ROOT / ".venv"
PYTHON = Path(os.environ.get("ORDERS_LAB_PYTHON") or VENV / "bin" / "python")
LAMBDA_PYTHON = Path(os.environ.get("ORDERS_LAB_LAMBDA_PYTHON") or ROOT / ".venv-lambda" / "bin" / "python")
STATE = Path(os.environ.get("ORDERS_HUB_STATE", "/srv/orders-hub"))
STATE.mkdir(mode=0o700, parents=True, exist_ok=True)
COURSE = Path(os.environ.get("ORDERS_HUB_COURSE", "/srv/orders-course.git"))
CHECKPOINTS = Path(os.environ.get("ORDERS_HUB_CHECKPOINTS", "/srv/orders-checkpoints"))
CHECKPOINTS.mkdir(mode=0o755, parents=True, exist_ok=True)
CLASS_PORT = int(os.environ.get("ORDERS_CLASS_PORT", "8082"))
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from course_repo import publish  # noqa: E402
from hub_hooks import DEFAULT_URL, lab_environment, prepare_server, stop_lab  # noqa: E402

c = get_config()  # noqa: F821 (provided by JupyterHub when it loads this file)

# -- where the Hub listens ----------------------------------------------------------------------------------
c.JupyterHub.bind_url = os.environ.get("ORDERS_HUB_BIND_URL", "http://:8000")
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = int(os.environ.get("ORDERS_HUB_PORT", "8081"))
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{os.environ.get('ORDERS_PROXY_API_PORT', '8001')}"
c.ConfigurableHTTPProxy.command = [str(ROOT / ".cache" / "node" / "node_modules" / ".bin" / "configurable-http-proxy")]
c.JupyterHub.db_url = f"sqlite:///{STATE / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(STATE / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(STATE / "jupyterhub.pid")

# -- who logs in: the accounts the instructor lists (Linux accounts through PAM, or another authenticator) -----
c.JupyterHub.authenticator_class = os.environ.get("ORDERS_HUB_AUTHENTICATOR", "pam")
c.Authenticator.admin_users = {u for u in os.environ.get("ORDERS_HUB_ADMINS", "").split(",") if u}
c.Authenticator.allowed_users = {u for u in os.environ.get("ORDERS_HUB_STUDENTS", "").split(",") if u}
c.Authenticator.allow_existing_users = True  # a student an instructor adds in the admin page may log in
if os.environ.get("ORDERS_HUB_ALLOW_ANY_LOCAL_ACCOUNT", "").lower() in ("yes", "true", "1"):
    print("WARNING: ORDERS_HUB_ALLOW_ANY_LOCAL_ACCOUNT: every account of this machine may log in to the Hub "
          "(service accounts included, if they have a password); list the students with ORDERS_HUB_STUDENTS "
          "instead", file=sys.stderr)
    c.Authenticator.allow_all = True
elif not c.Authenticator.allowed_users and not c.Authenticator.admin_users:
    print("WARNING: nobody may log in: set ORDERS_HUB_ADMINS (the instructors) and ORDERS_HUB_STUDENTS",
          file=sys.stderr)
# Instructors add students in the admin page; the Hub then creates their Linux accounts (useradd).
c.LocalAuthenticator.create_system_users = True

# -- each student's server: their account, their notebooks, their lab ------------------------------------------
c.Spawner.cmd = [str(PYTHON), "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~/orders-lab"
c.Spawner.default_url = DEFAULT_URL
c.Spawner.environment = lab_environment(ROOT, PYTHON, LAMBDA_PYTHON)
c.Spawner.environment.update({
    "ORDERS_CLASS_URL": f"http://127.0.0.1:{CLASS_PORT}/services/class/",  # where a lab sends its task records
    "LABKIT_CHECKPOINTS": str(CHECKPOINTS)})  # the class's checkpoints: `labkit cloud restore NAME` finds them
c.Spawner.pre_spawn_hook = prepare_server(ROOT, PYTHON, STATE / "class", str(COURSE))
c.Spawner.post_stop_hook = stop_lab(ROOT, PYTHON)
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# -- the course: the install's notebooks, published where every student's copy is pulled from ---------------------
publish(ROOT / "notebooks", COURSE, "The course's notebooks as installed")

# -- the class page for the instructors: a Hub service (classroom/class_service.py) ------------------------------
c.JupyterHub.services = [{
    "name": "class", "url": f"http://127.0.0.1:{CLASS_PORT}", "display": True, "oauth_no_confirm": True,
    "command": [sys.executable, str(HERE / "class_service.py")],
    "environment": {"ORDERS_HUB_STATE": str(STATE), "ORDERS_LAB_ROOT": str(ROOT), "ORDERS_LAB_PYTHON": str(PYTHON),
                    "ORDERS_HUB_COURSE": str(COURSE), **{k: os.environ[k] for k in (
                        "ORDERS_CLASS_POLL_SECONDS", "ORDERS_CLASS_SECTION") if k in os.environ}}}]
c.JupyterHub.load_roles = [{"name": "class-service", "services": ["class"],
                            "scopes": ["list:users", "read:users", "read:users:activity", "read:servers"]}]

# -- idle servers are stopped, and with them their labs -----------------------------------------------------
idle = int(os.environ.get("ORDERS_HUB_IDLE_SECONDS", "3600"))
if idle:
    c.JupyterHub.services.append({"name": "idle-culler",
                                  "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle}"]})
    c.JupyterHub.load_roles.append({"name": "idle-culler", "services": ["idle-culler"],
                                    "scopes": ["list:users", "read:users:activity", "read:servers",
                                               "delete:servers"]})
