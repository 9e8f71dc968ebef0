"""An executed step notebook opened in JupyterLab in headless Chromium, as a student sees it: the tables show
no index column, no NaN, no cut check text, and their text is left-aligned even though JupyterLab sanitizes
the outputs of a notebook it does not trust (it drops <style> blocks)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests.helpers import free_port, until

pytestmark = pytest.mark.browser
NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
STEP = "03_security_groups"


@pytest.fixture(scope="module")
def executed(provisioned, tmp_path_factory) -> Path:
    """Notebook 03, executed by papermill against the session's lab (idempotent: it changes nothing there)."""
    import papermill

    folder = tmp_path_factory.mktemp("executed")
    lab = provisioned.lab
    with pytest.MonkeyPatch.context() as env:  # the kernel finds the lab's cloud as a student's would
        env.setenv("LABKIT_HOME", str(provisioned.home))
        env.setenv("LABKIT_CLOUD_PORT", str(lab.config.cloud_port))
        env.setenv("LABKIT_APP_PORT", str(lab.config.app_port))
        env.setenv("MPLBACKEND", "Agg")
        papermill.execute_notebook(str(NOTEBOOKS / f"{STEP}.ipynb"), str(folder / f"{STEP}.ipynb"),
                                   parameters={"target": "local", "lab_name": lab.name, "region": lab.region},
                                   kernel_name="python3", progress_bar=False, cwd=str(NOTEBOOKS))
    return folder


@pytest.fixture(scope="module")
def jupyterlab(executed, tmp_path_factory):
    """JupyterLab on a free port, rooted at the executed notebook; stopped with its kernels afterwards."""
    port, token, home = free_port(), uuid.uuid4().hex, tmp_path_factory.mktemp("jupyter")
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(home / "config"), "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
           "JUPYTER_DATA_DIR": str(home / "data")}  # the signature store too: the notebook stays untrusted
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--ServerApp.root_dir={executed}", f"--IdentityProvider.token={token}",
               f"--LabApp.workspaces_dir={home / 'workspaces'}", "--ServerApp.allow_root=True"]
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        def answers() -> bool:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                return True
            except OSError:
                assert server.poll() is None, f"JupyterLab did not start (exit code {server.poll()})"
                return False

        until(answers, 60, 0.3, message=lambda: f"JupyterLab answering (exit code {server.poll()})")
        yield f"http://127.0.0.1:{port}", token
    finally:
        server.send_signal(signal.SIGTERM)  # Jupyter's own shutdown: it stops the kernels it started
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        try:
            os.killpg(server.pid, signal.SIGKILL)  # anything of its session still there
        except ProcessLookupError:
            pass


def _tables(browser) -> list[dict]:
    """Each output table: its header texts, its rows' cell texts, and each cell's computed alignment."""
    return browser.execute_script("""
        return [...document.querySelectorAll('.jp-OutputArea-output table')].map(t => ({
            header: [...t.querySelectorAll('thead th')].map(c => c.textContent.trim()),
            rows: [...t.querySelectorAll('tbody tr')].map(r => [...r.children].map(c => c.textContent.trim())),
            heads: [...t.querySelectorAll('tbody th')].length,
            align: [...t.querySelectorAll('td')].map(c => getComputedStyle(c).textAlign)}));""")


def test_a_step_notebook_in_jupyterlab_shows_clean_tables(browser, jupyterlab, provisioned):
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = jupyterlab
    browser.get(f"{base}/lab/tree/{STEP}.ipynb?reset&token={token}")
    checks = "SSH port 22 closed (commands go through SSM Run Command)"
    WebDriverWait(browser, 90, poll_frequency=0.5).until(
        lambda b: any(checks in cell for t in _tables(b) for row in t["rows"] for cell in row))
    tables = _tables(browser)
    assert len(tables) >= 3  # the security groups as a table, their rules, the checks
    for table in tables:
        assert table["heads"] == 0 and all(table["header"]), table  # no index column, no blank corner
        cells = [cell for row in table["rows"] for cell in row]
        assert not any(c in ("NaN", "None", "<NA>", "nan") for c in cells), table
        assert not any(c.endswith(("...", "…")) for c in cells), table
        assert set(table["align"]) == {"left"}, table
    rules = next(t for t in tables if t["header"] == ["group", "port", "from"])
    ports = [row[1] for row in rules["rows"]]
    assert str(provisioned.lab.config.app_port) in ports and "3306" in ports and "" in ports  # no rule: a blank
    check_table = next(t for t in tables if t["header"][:1] == ["check"])
    assert check_table["header"] == ["check", "expected", "actual", "passed"]
    assert [checks, "yes", "yes", "✓"] in check_table["rows"]


def test_the_reference_solution_is_folded_and_the_hints_closed(browser, jupyterlab):
    """The student sees the task, three closed hints and a folded reference solution (jupyter.source_hidden: one
    line and an ellipsis), not the answer."""
    from selenium.webdriver.support.ui import WebDriverWait

    base, token = jupyterlab
    browser.get(f"{base}/lab/tree/{STEP}.ipynb?reset&token={token}")

    def folded(b) -> dict | None:  # JupyterLab renders the cells near the view: scroll down until it is there
        return b.execute_script("""
            const placeholder = document.querySelector('.jp-Notebook .jp-InputPlaceholder');
            if (!placeholder) { const o = document.querySelector('.jp-WindowedPanel-outer'); if (o) o.scrollTop += 500;
                                return null; }
            const turn = [...document.querySelectorAll('.jp-RenderedMarkdown')].find(m => m.innerText.startsWith('Your turn'));
            if (!turn || !placeholder.innerText) { placeholder.scrollIntoView({block: 'center'}); return null; }
            return {placeholder: placeholder.innerText,
                    hidden: placeholder.closest('.jp-Cell').querySelector('.jp-InputArea') === null ||
                            placeholder.closest('.jp-Cell').querySelector('.jp-InputArea').offsetParent === null,
                    hints: turn ? [...turn.querySelectorAll('details')].map(d => [d.querySelector('summary').innerText, d.open]) : null};""")

    state = WebDriverWait(browser, 90, poll_frequency=0.5).until(folded)
    assert "reference solution" in state["placeholder"] and state["hidden"], state
    assert state["hints"] == [["Hint 1: the idea", False], ["Hint 2: which API", False], ["Hint 3: the call", False]]
