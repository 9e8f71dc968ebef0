"""The AWS managed policies' text: read from moto's data file when a policy is named, moto's 4.5 MiB module string
not kept by the daemon (issue 28, an idle lab's memory)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
# In a process of its own, as the daemon: moto patched, then what moto still holds and what a named policy reads.
PROBE = """
import json, sys
from labkit.localcloud import server
from labkit.localcloud.core import patches
from labkit.localcloud.core.services import Registry
from labkit.localcloud.iam import managed_policies
patches.apply(Registry(), (patches.core_patches, *server.patch_lists()))
from moto.iam import models
held = {"module": "moto.iam.aws_managed_policies" in sys.modules, "name": models.aws_managed_policies_data}
names = list(managed_policies._policy_offsets())
read = {name: managed_policies._policy_data(name) for name in
        ("AWSLambdaBasicExecutionRole", "AWSLambdaVPCAccessExecutionRole", names[-1], "NoSuchPolicy")}
print(json.dumps({"held": held, "names": names, "read": read}))
"""


def test_a_named_policy_is_read_from_moto_s_file_and_moto_s_string_is_let_go():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=PROJECT, capture_output=True, text=True, timeout=120,
                          check=True)
    found = json.loads(done.stdout)
    assert found["held"] == {"module": False, "name": ""}
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    every = json.loads(aws_managed_policies_data)
    assert found["names"] == list(every)
    for name, data in found["read"].items():
        assert data == every.get(name), name
    assert found["read"]["NoSuchPolicy"] is None
