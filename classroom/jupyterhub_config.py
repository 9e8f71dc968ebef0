"""JupyterHub for a class on one server: one Linux account per student, each with a lab of their own.

Run as root from the project folder (after `make setup`):

    .venv/bin/jupyterhub -f classroom/jupyterhub_config.py

Students log in with their Linux account (PAM). Each gets a single-user Jupyter server running as
their own account, their own copy of the notebooks in ``~/orders-lab``, and their own lab state in
``~/.labkit`` (mode 0700): local cloud, databases, instances, keys. The project's folder (code,
virtual environments, package mirror) is shared and read-only; the system MariaDB binary is shared.
Every URL a lab shows opens through the Hub (jupyter-server-proxy's ``/user/<name>/proxy/...``).

Settings from the environment (all optional):
    ORDERS_HUB_BIND_URL   where the Hub is served (default ``http://:8000``)
    ORDERS_HUB_PORT       the Hub's internal API port on 127.0.0.1 (default 8081)
    ORDERS_PROXY_API_PORT configurable-http-proxy's API port on 127.0.0.1 (default 8001)
    ORDERS_HUB_ADMINS     comma-separated admin accounts (the instructors)
    ORDERS_HUB_STUDENTS   comma-separated accounts allowed to log in (default: any local account)
    ORDERS_HUB_STATE      folder for the Hub's database and cookie secret (default ``/srv/orders-hub``)
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
from hub_hooks import copy_notebooks, lab_environment, stop_lab  # noqa: E402

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

# -- who logs in: Linux accounts ----------------------------------------------------------------------------
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.admin_users = {u for u in os.environ.get("ORDERS_HUB_ADMINS", "").split(",") if u}
students = {u for u in os.environ.get("ORDERS_HUB_STUDENTS", "").split(",") if u}
if students:
    c.Authenticator.allowed_users = students
else:
    c.Authenticator.allow_existing_users = True
    c.Authenticator.allow_all = True
# Instructors add students in the admin page; the Hub then creates their Linux accounts (useradd).
c.LocalAuthenticator.create_system_users = True

# -- each student's server: their account, their notebooks, their lab ------------------------------------------
c.Spawner.cmd = [str(PYTHON), "-m", "jupyterhub.singleuser"]
c.Spawner.notebook_dir = "~/orders-lab"
c.Spawner.default_url = "/lab/tree/notebooks/00_start_here.ipynb"
c.Spawner.environment = lab_environment(ROOT, PYTHON, LAMBDA_PYTHON)
c.Spawner.pre_spawn_hook = copy_notebooks(ROOT)
c.Spawner.post_stop_hook = stop_lab(ROOT, PYTHON)
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 120

# -- idle servers are stopped, and with them their labs -----------------------------------------------------
idle = int(os.environ.get("ORDERS_HUB_IDLE_SECONDS", "3600"))
if idle:
    c.JupyterHub.services = [{"name": "idle-culler",
                              "command": [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={idle}"]}]
    c.JupyterHub.load_roles = [{"name": "idle-culler", "services": ["idle-culler"],
                                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"]}]
