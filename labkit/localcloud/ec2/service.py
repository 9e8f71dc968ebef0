"""EC2 instances as sandboxes, and SSM Run Command into them.

An instance is a folder under ``LABKIT_HOME/ec2/<id>`` (its "disk") plus the processes started in
it. User data runs once at launch, its output kept in ``var/log/cloud-init-output.log`` as
cloud-init keeps it. Every process of an instance carries ``LABKIT_INSTANCE_ID`` in its environment,
so StopInstances/TerminateInstances end all of them, ``nohup`` jobs included. The sandbox has a
``systemctl`` that runs units from ``etc/systemd/system`` (see :mod:`.systemctl_shim`); StartInstances
starts the enabled ones again, as systemd does at boot, and nothing else.

A restart of the cloud is a host reboot (issue 23): the disks are kept; a running instance boots again (``/run``
emptied, as a tmpfs is; its enabled units started; its user data not run again, as cloud-init runs it once per
instance, unless its first boot never finished); a stopped one stays stopped. A checkpoint carries each disk
(less ``/run``), moved into place and its paths rewritten when another lab takes it in.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moto.ec2.models import ec2_backends
from moto.iam.exceptions import NotFoundException as IamNotFound
from werkzeug.wrappers import Request

from labkit.localcloud.awslambda.service import python_version, runtime_python
from labkit.localcloud.control import PROJECT_ROOT
from labkit.localcloud.core.checkpoint import rewrite_paths
from labkit.localcloud.core.clock import ClockService
from labkit.localcloud.core.services import CloudContext, Route, Service
from labkit.localcloud.ec2.exceptions import UNMANAGED, InvalidInstanceId
from labkit.localcloud.ec2.imds import ImdsService
from labkit.localcloud.ec2.pending import resume_pending
from labkit.localcloud.iam.principals import backend as iam_backend
from labkit.localcloud.network.service import NetworkService
from labkit.localcloud.procs import HOME_MARKER, INSTANCE_MARKER, kill_marked

log = logging.getLogger("labkit.localcloud.ec2")
OUTPUT_LIMIT = 24000  # AWS truncates StandardOutputContent/StandardErrorContent at 24,000 characters
INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
SSM_POLICIES = ("AmazonSSMManagedInstanceCore", "AmazonSSMFullAccess", "AmazonEC2RoleforSSM")


class Ec2Service(Service):
    """The sandbox folders and processes behind moto's EC2 instances."""

    name = "ec2"

    def __init__(self, ctx: CloudContext) -> None:
        self.ctx = ctx
        self.boot_seconds: dict[str, float] = {}
        self._restored = False
        self._lab = (HOME_MARKER, str(ctx.home))  # an instance's processes are those of this lab (ids repeat: checkpoints)

    def start(self) -> None:
        self.ctx.service_dir("ec2", fresh=not self._restored)
        if self._restored:
            self._take_in_disks()
            self._boot_restored()
            resume_pending(ec2_backends)

    # -- what a restart keeps (issue 23) ------------------------------------------------------------------
    def load_state(self, saved: dict[str, Any] | None, restored: bool) -> None:
        self._restored = restored

    def export_state(self, folder: Path) -> dict[str, Any]:
        """A checkpoint: each instance's disk (less ``/run``), and the image's Python its venvs point at."""
        root = self.ctx.home / "ec2"
        for disk in sorted(root.iterdir()) if root.is_dir() else []:
            shutil.copytree(disk, folder / disk.name, symlinks=True,
                            ignore=lambda path, _names, disk=disk: ["run"] if Path(path) == disk else [])
        return _image_python()

    def _take_in_disks(self) -> None:
        """A checkpoint's disks replace this lab's, their paths rewritten to this lab's (its home, the project, the
        image's Python); a disk of no instance of the checkpoint goes. Done again after a crash, it changes nothing
        more."""
        imported, relocation = self.ctx.state.imported(self.name), self.ctx.state.relocation
        if relocation is None:
            return
        root = self.ctx.service_dir("ec2")
        said, mine = relocation.get("services", {}).get(self.name, {}), _image_python()
        if said.get("version") and said["version"] != mine["version"]:
            log.warning("the checkpoint's instances were made with Python %s, this lab's image has Python %s: "
                        "their virtual environments will not run", said["version"], mine["version"])
        paths = {relocation.get("home", ""): str(self.ctx.home), relocation.get("project", ""): str(PROJECT_ROOT),
                 **{said.get(key, ""): mine[key] for key in ("image_python", "image_python_folder", "runtime")}}
        for disk in sorted(imported.iterdir()) if imported is not None else []:
            shutil.rmtree(root / disk.name, ignore_errors=True)
            rewrite_paths(disk, paths)
            disk.rename(root / disk.name)
        kept = {i.id for _a, per_account in list(dict.items(ec2_backends)) for backend in list(dict.values(per_account))
                for i in backend.all_instances()}
        for disk in list(root.iterdir()):
            if disk.name not in kept:
                shutil.rmtree(disk, ignore_errors=True)

    def _boot_restored(self) -> None:
        """Each instance as EC2 shows it after a host reboot (see the module's docstring)."""
        for _account, per_account in list(dict.items(ec2_backends)):
            for region, backend in list(dict.items(per_account)):
                for instance in list(backend.all_instances()):
                    name, root = instance._state.name, self.root(instance.id)
                    if name in ("running", "pending"):
                        self._reboot(instance, root)
                    elif name == "stopping":
                        instance._state.name, instance._state.code = "stopped", 80
                        shutil.rmtree(root / "run", ignore_errors=True)
                    elif name == "shutting-down":
                        instance._state.name, instance._state.code = "terminated", 48
                        self.on_terminate(instance)
                    elif name == "terminated":
                        shutil.rmtree(root, ignore_errors=True)
                self.ctx.state.mark("ec2", region)

    def _reboot(self, instance: Any, root: Path) -> None:
        shutil.rmtree(root / "run", ignore_errors=True)  # /run is a tmpfs: a reboot empties it
        (root / "run").mkdir(parents=True, exist_ok=True)
        instance._state.name, instance._state.code = "pending", 0
        first_boot_done = (root / "var/lib/cloud/instance/boot-finished").exists()
        script = instance.user_data.decode() if instance.user_data else ""

        def boot() -> None:
            with self.ctx.state.settling(f"ec2:{instance.id}"):
                if not first_boot_done and script.strip():  # cloud-init never finished its once-per-instance run
                    self._run_user_data(instance, root, script)
                    (root / "var/lib/cloud/instance/boot-finished").write_text(self._lab_now().isoformat())
                self._start_enabled(instance, root)
                instance._state.name, instance._state.code = "running", 16
                self.ctx.state.mark("ec2", instance.region_name)

        threading.Thread(target=boot, daemon=True, name=f"reboot-{instance.id}").start()

    def _start_enabled(self, instance: Any, root: Path) -> None:
        """What systemd does at boot: start the enabled units; returns once they have started."""
        subprocess.run([str(root / "bin" / "systemctl"), "start-enabled"], env=self.env(instance),
                       cwd=root, stdin=subprocess.DEVNULL, capture_output=True)

    def summary(self) -> dict[str, Any]:
        root = self.ctx.home / "ec2"
        return {"instances": sorted(p.name for p in root.iterdir()) if root.exists() else []}

    def routes(self) -> list[tuple[str, str, Route]]:
        return [("GET", "/_labkit/ec2/*", self._user_data_log_route)]

    def _user_data_log_route(self, request: Request) -> dict[str, Any]:
        """``GET /_labkit/ec2/<instance id>/user-data-log``: what cloud-init wrote while running the user data."""
        instance_id, _, what = request.path.removeprefix("/_labkit/ec2/").partition("/")
        if what != "user-data-log":
            raise LookupError(f"no such endpoint {request.path}")
        path = self.root(instance_id) / "var/log/cloud-init-output.log"
        found = INSTANCE_ID.match(instance_id) and path.exists()  # never a path outside the sandboxes
        return {"instance_id": instance_id, "log": path.read_text(errors="replace") if found else None}

    def _imds(self) -> ImdsService:
        return self.ctx.services.require(ImdsService)

    def root(self, instance_id: str) -> Path:
        return self.ctx.home / "ec2" / instance_id

    def env(self, instance: Any) -> dict[str, str]:
        root = self.root(instance.id)
        extra = {
            "HOME": str(root / "root"), "USER": "root", "LABKIT_SANDBOX": str(root), INSTANCE_MARKER: instance.id,
            "PATH": f"{root / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            # Where boto3 finds the instance metadata service (credentials of the instance profile's role).
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": self._imds().endpoint(instance),
        }
        wheels = Path(os.environ.get("LABKIT_WHEELHOUSE") or PROJECT_ROOT / ".cache" / "wheels")
        if wheels.is_dir():  # the local image's package mirror: pip works offline
            extra.update({"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(wheels), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        return self.ctx.child_env("ec2", instance.id, extra, region=instance.region_name)

    def _lab_now(self) -> dt.datetime:
        """The instance's time: the lab clock (:mod:`labkit.localcloud.core.clock`)."""
        clock = self.ctx.services.find(ClockService)
        return clock.clock.now() if clock is not None else dt.datetime.now(dt.UTC)

    def _build_image(self, instance: Any) -> Path:
        root = self.root(instance.id)
        for sub in ("bin", "root", "var/log", "var/lib/cloud/instance", "etc/systemd/system", "run", "opt", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        # The image's python3 has boto3, as Ubuntu's python3-boto3 gives it: the Lambda runtime's interpreter.
        image_python = Path(runtime_python())
        python = str(image_python) if image_python.exists() else getattr(sys, "_base_executable", sys.executable)
        for name in ("python3", "python"):
            _write_exec(root / "bin" / name, f'#!/bin/sh\nexec "{python}" "$@"\n')
        shim = Path(__file__).with_name("systemctl_shim.py")
        for name in ("systemctl", "journalctl"):
            _write_exec(root / "bin" / name, f'#!/bin/sh\nexec "{sys.executable}" -I "{shim}" --as-{name} "$@"\n')
        # `sudo` is a no-op: commands already run as the instance's root.
        _write_exec(root / "bin" / "sudo", '#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do shift; done\nexec "$@"\n')
        return root

    # -- lifecycle hooks ---------------------------------------------------------------------------------
    def on_run(self, instance: Any) -> None:
        started = time.monotonic()
        root = self._build_image(instance)
        instance._state.name, instance._state.code = "pending", 0
        script = instance.user_data.decode() if instance.user_data else ""

        def boot() -> None:
            instance._state.name, instance._state.code = "running", 16
            if script.strip():
                self._run_user_data(instance, root, script)
            (root / "var/lib/cloud/instance/boot-finished").write_text(self._lab_now().isoformat())
            self.boot_seconds[instance.id] = time.monotonic() - started
            self.ctx.state.mark("ec2", instance.region_name)

        threading.Thread(target=boot, daemon=True, name=f"boot-{instance.id}").start()

    def _run_user_data(self, instance: Any, root: Path, script: str) -> None:
        path = root / "var/lib/cloud/instance/user-data.txt"
        path.write_text(script)
        path.chmod(0o700)
        command = [str(path)] if script.startswith("#!") else ["/bin/sh", str(path)]
        with open(root / "var/log/cloud-init-output.log", "ab") as out:
            result = subprocess.run(command, cwd=root / "root", env=self.env(instance), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT)
            out.write(f"Cloud-init finished user data with exit code {result.returncode}\n".encode())

    def _shut_down(self, instance: Any) -> None:
        """End every process of the instance; unit supervisors see the shutdown mark and restart nothing."""
        mark = self.root(instance.id) / "run" / "systemd" / "shutdown"
        if mark.parent.is_dir():
            mark.write_text("")
        kill_marked(INSTANCE_MARKER, instance.id, within=self._lab)

    def on_stop(self, instance: Any) -> None:
        self._shut_down(instance)
        shutil.rmtree(self.root(instance.id) / "run", ignore_errors=True)

    def on_terminate(self, instance: Any) -> None:
        self._shut_down(instance)
        self._imds().forget(instance.id)
        network = self.ctx.services.find(NetworkService)
        if network is not None:
            network.forget_instance(instance.id)
        shutil.rmtree(self.root(instance.id), ignore_errors=True)

    def on_start(self, instance: Any) -> None:
        root = self.root(instance.id)
        instance._state.name, instance._state.code = "pending", 0

        def boot() -> None:
            self._start_enabled(instance, root)
            instance._state.name, instance._state.code = "running", 16
            self.ctx.state.mark("ec2", instance.region_name)

        threading.Thread(target=boot, daemon=True).start()

    def stop_all(self) -> None:
        root = self.ctx.home / "ec2"
        for folder in root.iterdir() if root.exists() else []:
            kill_marked(INSTANCE_MARKER, folder.name, within=self._lab)

    def after_reset(self) -> None:
        self.boot_seconds.clear()
        self.ctx.service_dir("ec2", fresh=True)

    # -- SSM Run Command ------------------------------------------------------------------------------------
    def is_managed(self, instance: Any) -> bool:
        """Reachable by SSM: running, with an instance profile whose role allows the SSM agent."""
        if instance.state != "running":
            return False
        profile = instance.iam_instance_profile or {}
        iam = iam_backend()
        try:
            if profile.get("Arn"):
                found = iam.get_instance_profile_by_arn(profile["Arn"])
            else:
                found = iam.get_instance_profile(profile.get("Name", ""))
        except IamNotFound:  # no profile, or one deleted since launch: the agent cannot register
            return False
        for role in found.roles:
            names = [arn.rsplit("/", 1)[-1] for arn in role.managed_policies]
            inline = json.dumps(list(role.policies.values()))
            if any(p in names for p in SSM_POLICIES) or "ssm:UpdateInstanceInformation" in inline or '"ssm:*"' in inline:
                return True
        return False

    def run_command(self, command: Any, instance: Any) -> None:
        invocation = next(i for i in command.invocations if i["InstanceId"] == instance.id)
        params = command.parameters or {}
        lines = params.get("commands", [])
        timeout = float((params.get("executionTimeout") or ["3600"])[0])
        root = self.root(instance.id)
        workdir = root / "var/lib/amazon/ssm" / command.command_id
        workdir.mkdir(parents=True, exist_ok=True)
        script = workdir / "_script.sh"
        script.write_text("\n".join(lines) + "\n")
        cwd = Path((params.get("workingDirectory") or [""])[0] or workdir)
        started = self._lab_now()
        invocation.update(Status="InProgress", StatusDetails="InProgress",
                          ExecutionStartDateTime=started.isoformat(), ResponseCode=-1)
        with open(workdir / "stdout", "wb") as out, open(workdir / "stderr", "wb") as err:
            proc = subprocess.Popen(["/bin/sh", str(script)], cwd=cwd, env=self.env(instance),
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            try:
                code = proc.wait(timeout=timeout)
                status = "Success" if code == 0 else "Failed"
            except subprocess.TimeoutExpired:
                proc.kill()
                code, status = proc.wait(), "TimedOut"
        ended = self._lab_now()
        invocation.update(
            Status=status, StatusDetails=status, ResponseCode=code,
            StandardOutputContent=(workdir / "stdout").read_text(errors="replace")[:OUTPUT_LIMIT],
            StandardErrorContent=(workdir / "stderr").read_text(errors="replace")[:OUTPUT_LIMIT],
            ExecutionEndDateTime=ended.isoformat(),
            ExecutionElapsedTime=f"PT{(ended - started).total_seconds():.3f}S")
        statuses = [i["Status"] for i in command.invocations]
        if all(s not in ("Pending", "InProgress") for s in statuses):
            command.error_count = sum(s != "Success" for s in statuses)
            command.completed_count = len(statuses)
            command.status = "Success" if command.error_count == 0 else (
                "TimedOut" if "TimedOut" in statuses else "Failed")
            command.status_details = command.status
        self.ctx.state.mark("ssm", instance.region_name)

    def send_command(self, send: Callable[[], Any], account_id: str, region: str, kwargs: dict[str, Any]) -> Any:
        """SendCommand: refuse unmanaged instances as AWS does, then run AWS-RunShellScript in each sandbox."""
        ec2 = ec2_backends[account_id][region]
        instances = [ec2.get_instance_by_id(i) for i in kwargs.get("instance_ids") or []]
        if not instances or any(i is None or not self.is_managed(i) for i in instances):
            raise InvalidInstanceId(UNMANAGED)
        command = send()
        if kwargs.get("document_name") == "AWS-RunShellScript":
            command.status = command.status_details = "InProgress"
            for invocation in command.invocations:
                invocation.update(Status="Pending", StatusDetails="Pending", StandardOutputContent="",
                                  StandardErrorContent="", ResponseCode=-1)
            for instance in instances:
                threading.Thread(target=self.run_command, args=(command, instance), daemon=True).start()
        return command

    # -- SSM responses moto lacks (``response`` is moto's SimpleSystemManagerResponse) ----------------------
    def list_command_invocations(self, response: Any) -> str:
        command_id, instance_id = response._get_param("CommandId"), response._get_param("InstanceId")
        details = response._get_param("Details", False)
        rows = []
        for command in response.ssm_backend.list_commands(command_id, instance_id):
            for inv in command.invocations:
                if instance_id and inv["InstanceId"] != instance_id:
                    continue
                row = {"CommandId": command.command_id, "InstanceId": inv["InstanceId"], "Comment": command.comment,
                       "DocumentName": command.document_name,
                       "RequestedDateTime": command.requested_date_time.timestamp(),
                       "Status": inv["Status"], "StatusDetails": inv["StatusDetails"]}
                if details:
                    row["CommandPlugins"] = [{
                        "Name": inv["PluginName"], "Status": inv["Status"], "StatusDetails": inv["StatusDetails"],
                        "ResponseCode": inv["ResponseCode"], "Output": inv["StandardOutputContent"][:2500]}]
                rows.append(row)
        return json.dumps({"CommandInvocations": rows})

    def describe_instance_information(self, response: Any) -> str:
        wanted = set()
        for item in response._get_param("InstanceInformationFilterList", []) + response._get_param("Filters", []):
            if item.get("key", item.get("Key")) in ("InstanceIds", "InstanceId"):
                wanted.update(item.get("valueSet", item.get("Values", [])))
        ec2 = ec2_backends[response.current_account][response.region]
        rows = [{"InstanceId": i.id, "PingStatus": "Online", "PlatformType": "Linux", "PlatformName": "Ubuntu",
                 "PlatformVersion": "22.04", "AgentVersion": "3.3.0.0", "IsLatestVersion": True,
                 "ResourceType": "EC2Instance", "IPAddress": i.private_ip,
                 "ComputerName": i.private_dns_name}
                for i in ec2.all_instances() if self.is_managed(i) and (not wanted or i.id in wanted)]
        return json.dumps({"InstanceInformationList": rows})


def _image_python() -> dict[str, str]:
    """The image's python3 (the Lambda runtime's interpreter): what an instance's venv names (its path, the real
    interpreter and its folder, in ``pyvenv.cfg`` and the venv's links), and its version."""
    real = os.path.realpath(runtime_python())
    return {"runtime": runtime_python(), "image_python": real, "image_python_folder": os.path.dirname(real),
            "version": python_version(runtime_python()) if Path(runtime_python()).exists() else ""}


def _write_exec(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)
