"""labkit never crashes on a part that is down: the check fails naming it and the fix; status shows it down."""
from __future__ import annotations

from labkit import checks, cli, compute, health


def test_a_stopped_app_fails_its_checks_and_shows_as_down(provisioned, monkeypatch, capsys):
    lab = provisioned.lab
    url = compute.app_url(lab)
    compute.run_on_instance(lab, "systemctl stop orders-app", step=8)
    try:
        frame = checks.step_checks(lab, 8)
        healthz = frame[frame["check"] == "app answers /healthz"].iloc[0]
        assert not healthz["passed"]
        assert "unreachable" in healthz["actual"] and "systemctl status orders-app" in healthz["actual"]
        parts = health.health_frame(lab).set_index("part")
        assert parts.loc["order app", "state"] == "down" and "journalctl -u orders-app" in parts.loc["order app", "how to fix"]
        assert parts.loc["database", "state"] == "up" and parts.loc["order-validator -> database", "state"] == "up"

        monkeypatch.setenv("LABKIT_HOME", str(provisioned.home))
        monkeypatch.setenv("LABKIT_LAB", lab.name)
        monkeypatch.setenv("LABKIT_APP_PORT", str(lab.config.app_port))
        assert cli.main(["check", "--through", "8"]) == 1
        assert cli.main(["status"]) == 0
        out = capsys.readouterr().out
        assert "order app" in out and "down" in out and "Traceback" not in out
    finally:
        compute.run_on_instance(lab, "systemctl start orders-app", step=8)
        compute.wait_for_app(lab, url, compute.describe_instance(lab)["InstanceId"], step=8)
