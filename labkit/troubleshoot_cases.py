"""Notebook 15's seven cases, done by the student: break it, read the evidence, fix it with your own call, and
a check grades the fix.

Each case has a probe (:mod:`labkit.troubleshoot`, :mod:`labkit.troubleshoot_iam`). ``break_it`` puts the
probe into the case's broken state -- also after an earlier fix, so the case can be done again -- and raises
:class:`BreakNotReproduced` if the symptom is not the one the lesson explains. ``check_fix`` asks the cloud
whether the student's fix works, as the "Your turn" checks do (:mod:`labkit.tasks`): passed, or not yet with
what it sees and a hint. A check repairs nothing; the reference fixes are in the notebook, under
``if solutions:``. Where the symptom is a wait, the attempt shows how long it took.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from labkit import troubleshoot, troubleshoot_iam, troubleshoot_nacl
from labkit.errors import LabkitError
from labkit.lookups import function_configuration
from labkit.names import SECRET_NAME, layer_name, probe_name
from labkit.session import Lab
from labkit.troubleshoot import Attempt

__all__ = ["BREAK_TIMEOUT", "CASES", "BreakNotReproduced", "FixNotDone", "FixResult", "break_it", "check_fix",
           "fixes_frame"]

BREAK_TIMEOUT = 3  # seconds: the timeout probe's own timeout (Lambda's default)
IAM_WAIT = 30      # seconds a check waits for an IAM change to reach Lambda (AWS: a few seconds; local: at once)


class BreakNotReproduced(LabkitError):
    """A case's break did not show the symptom the lesson explains (the lab is not as step 1-13 left it)."""


class FixNotDone(LabkitError):
    """The reference fix ran (``solutions = True``) but the case's check still says "not yet"."""


@dataclass(frozen=True, repr=False)
class FixResult:
    number: int
    title: str
    passed: bool
    detail: str
    hint: str

    def _repr_markdown_(self) -> str:
        if self.passed:
            return f"**Case {self.number}, your fix: passed** ✅ — {self.detail}"
        return f"**Case {self.number}, your fix: not yet** ⏳ — {self.detail}  \n*Hint:* {self.hint}"

    def __str__(self) -> str:
        if self.passed:
            return f"Case {self.number}, your fix: passed: {self.detail}"
        return f"Case {self.number}, your fix: not yet: {self.detail}\n  Hint: {self.hint}"

    __repr__ = __str__


@dataclass(frozen=True)
class Case:
    number: int
    title: str
    symptom: str                                # what the break must show
    hint: str                                   # shown with "not yet"
    breaks: Callable[[Lab], Any]
    check: Callable[[Lab], tuple[bool, str]]


# ---- trying a probe ----------------------------------------------------------------------------------------

def _expect(lab: Lab, probe: str, shows: Callable[[Attempt], bool], symptom: str, retry_for: float = 0) -> Attempt:
    """Try ``probe`` in a fresh environment until it ``shows`` the symptom (``retry_for`` seconds: an IAM change
    reaches Lambda seconds later on AWS); raise BreakNotReproduced if it never does."""
    deadline = time.monotonic() + retry_for
    while True:
        troubleshoot.fresh_environment(lab, probe)
        attempt = troubleshoot.try_probe(lab, probe)
        if shows(attempt):
            return attempt
        if time.monotonic() >= deadline:
            raise BreakNotReproduced(
                f"{probe} should have answered {symptom}, but answered "
                f"{attempt.error_type or attempt.function_error or 'without error'}: {attempt.answer[:300]}",
                "check that steps 1-13 ran (labkit check), then run the break cell again")
        time.sleep(3)


def _works(attempt: Attempt) -> tuple[bool, str]:
    """(passed, detail) from a probe's answer to the lookup."""
    if attempt.ok:
        status = attempt.answer
        try:
            status = json.loads(attempt.answer).get("status", status)
        except (ValueError, AttributeError):
            pass
        return True, (f"{attempt.function} now loads, reads its secret and queries the database: it answered "
                      f"{status!r} in {attempt.seconds:.2f} s")
    return False, (f"{attempt.function} still fails after {attempt.seconds:.2f} s: "
                   f"{attempt.error_type or attempt.function_error}: {attempt.answer[:300]}")


def _exists(lab: Lab, case: str) -> dict[str, Any] | None:
    return function_configuration(lab, probe_name(lab, case))


MISSING = "the probe does not exist yet: run this case's break cell first"


# ---- 1. Missing pymysql module -----------------------------------------------------------------------------

def _break_no_layer(lab: Lab) -> Attempt:
    probe = troubleshoot.deploy_probe(lab, "no-layer", with_layer=False)
    return _expect(lab, probe, lambda a: a.error_type == "Runtime.ImportModuleError", "Runtime.ImportModuleError")


def _check_no_layer(lab: Lab) -> tuple[bool, str]:
    config = _exists(lab, "no-layer")
    if config is None:
        return False, MISSING
    layers = [layer["Arn"].split(":")[-2] + ":" + layer["Arn"].split(":")[-1] for layer in config.get("Layers", [])]
    if not layers:
        return False, "the probe still has no layer: nothing gives its code pymysql"
    attempt = troubleshoot.try_probe(lab, config["FunctionName"])
    if attempt.error_type == "Runtime.ImportModuleError":
        return False, (f"it has the layer(s) {', '.join(layers)}, but Python still cannot import pymysql: "
                       f"attach the lab's pymysql layer ({layer_name(lab)})")
    return _works(attempt)


# ---- 2. Lambda timeout -------------------------------------------------------------------------------------

def _break_timeout(lab: Lab) -> Attempt:
    probe = troubleshoot.deploy_probe(lab, "timeout", timeout=BREAK_TIMEOUT, own_group=True)
    troubleshoot.revoke_probe(lab)
    return _expect(lab, probe, lambda a: "Task timed out" in a.answer,
                   f"Task timed out after {BREAK_TIMEOUT}.00 seconds")


def _blocked(lab: Lab, probe: str) -> str | None:
    """Why ``probe`` cannot reach Secrets Manager or the database (None: both paths are open)."""
    for row in troubleshoot.probe_paths_frame(lab, probe).itertuples():
        if not row.allowed:
            return f"{row.path} is blocked: {row.because}"
    return None


def _check_timeout(lab: Lab) -> tuple[bool, str]:
    config = _exists(lab, "timeout")
    if config is None:
        return False, MISSING
    timeout = config.get("Timeout", BREAK_TIMEOUT)
    longer = (f"; its timeout is now {timeout} s, but a longer timeout only waits longer for a connection that "
              "cannot succeed") if timeout > BREAK_TIMEOUT else ""
    blocked = _blocked(lab, config["FunctionName"])
    if blocked:
        return False, blocked + longer
    passed, detail = _works(troubleshoot.try_probe(lab, config["FunctionName"]))
    if passed and timeout > BREAK_TIMEOUT:
        detail += f" (its timeout is {timeout} s; {BREAK_TIMEOUT} s is enough once the path exists)"
    return passed, detail


# ---- 3. Secret key error -----------------------------------------------------------------------------------

def _break_secret(lab: Lab) -> Attempt:
    secret = troubleshoot.write_broken_secret(lab)
    probe = troubleshoot.deploy_probe(lab, "secret", env={"DB_SECRET_NAME": secret})
    return _expect(lab, probe, lambda a: a.error_type == "SecretFormatError", "SecretFormatError")


def _check_secret(lab: Lab) -> tuple[bool, str]:
    config = _exists(lab, "secret")
    if config is None:
        return False, MISSING
    name = config.get("Environment", {}).get("Variables", {}).get("DB_SECRET_NAME", "(not set)")
    keys = troubleshoot.secret_keys_frame(lab, name)
    missing = [k for k in ("username", "password", "host", "dbname") if not keys.loc[keys["key"] == k, "present"].any()]
    if missing:
        return False, (f"the probe reads {name}, which still lacks {', '.join(missing)} "
                       f"(it has {', '.join(keys.loc[keys['present'], 'key'])})")
    attempt = troubleshoot.try_probe(lab, config["FunctionName"])
    if attempt.error_type == "DatabaseError" and "1045" in attempt.answer:
        return False, (f"{name} has the right shape now, but the database refused the login: the probe secret never "
                       f"held the real password (it lives in one secret only): point the probe at {SECRET_NAME}")
    passed, detail = _works(attempt)
    return passed, detail + (f" (it reads {name})" if passed else "")


# ---- 4. RDS connection issue -------------------------------------------------------------------------------

def _break_rds(lab: Lab) -> Attempt:
    probe = troubleshoot.deploy_probe(lab, "rds", own_group=True)
    troubleshoot.revoke_probe(lab, ("rds",))
    troubleshoot.admit_probe(lab, "endpoints")
    return _expect(lab, probe, lambda a: a.error_type == "DatabaseError" and "[MySQL error 2003]" in a.answer,
                   "DatabaseError [MySQL error 2003]")


def _check_rds(lab: Lab) -> tuple[bool, str]:
    config = _exists(lab, "rds")
    if config is None:
        return False, MISSING
    blocked = _blocked(lab, config["FunctionName"])
    if blocked:
        return False, blocked
    return _works(troubleshoot.try_probe(lab, config["FunctionName"]))


# ---- 5. IAM VPC permission error ---------------------------------------------------------------------------

def _break_vpc_access(lab: Lab) -> pd.DataFrame:
    frame = troubleshoot_iam.vpc_permission_error(lab)
    if frame.iloc[0]["result"] != "InvalidParameterValueException":
        raise BreakNotReproduced(f"Lambda should have refused the move with InvalidParameterValueException, but "
                                 f"answered {frame.iloc[0]['result']}: {frame.iloc[0]['message']}",
                                 "run the break cell again (on AWS an IAM change takes a few seconds)")
    return frame


def _check_vpc_access(lab: Lab) -> tuple[bool, str]:
    config = _exists(lab, "no-vpc-access")
    if config is None:
        return False, MISSING
    subnets = (config.get("VpcConfig") or {}).get("SubnetIds") or []
    if subnets:
        return True, f"{config['FunctionName']} runs in {len(subnets)} private subnets of the lab's VPC"
    role = troubleshoot_iam.probe_role_name(lab, "no-vpc-access")
    if troubleshoot_iam.may_create_network_interfaces(lab, role):
        return False, ("the role may create network interfaces now, but the function is still outside the VPC: "
                       "make the move again (update_function_configuration with VpcConfig)")
    return False, f"{role} still may not create network interfaces, and the function is outside the VPC"


# ---- 6. A missing permission: AccessDenied -----------------------------------------------------------------

def _break_secret_access(lab: Lab) -> Attempt:
    probe = troubleshoot_iam.secret_permission_error(lab)
    return _expect(lab, probe, lambda a: "AccessDeniedException" in a.answer, "AccessDeniedException",
                   retry_for=IAM_WAIT)


def _check_secret_access(lab: Lab) -> tuple[bool, str]:
    config = _exists(lab, "no-secret-access")
    if config is None:
        return False, MISSING
    role = troubleshoot_iam.probe_role_name(lab, "no-secret-access")
    deadline = time.monotonic() + IAM_WAIT
    attempt = troubleshoot.try_probe(lab, config["FunctionName"])
    while "AccessDeniedException" in attempt.answer and troubleshoot_iam.may_read_secret(lab, role) \
            and time.monotonic() < deadline:
        time.sleep(3)  # a policy change reaches Lambda seconds later on AWS
        attempt = troubleshoot.try_probe(lab, config["FunctionName"])
    passed, detail = _works(attempt)
    if not passed:
        return passed, detail
    broader = troubleshoot_iam.broader_than_reading(lab, role)
    if broader:
        return False, (f"it works, but {role} may now also {'; '.join(broader)}: allow exactly "
                       f"secretsmanager:GetSecretValue on {SECRET_NAME}'s ARN")
    return True, detail + f"; {role} may read {SECRET_NAME} and nothing more in Secrets Manager"


# ---- 7. A network ACL: the return traffic ---------------------------------------------------------------

def _break_nacl(lab: Lab) -> Attempt:
    probe = troubleshoot.deploy_probe(lab, "nacl", timeout=BREAK_TIMEOUT)  # in lambda-sg, as order-validator
    troubleshoot_nacl.break_private_acl(lab)
    return _expect(lab, probe, lambda a: "Task timed out" in a.answer,
                   f"Task timed out after {BREAK_TIMEOUT}.00 seconds")


def _check_nacl(lab: Lab) -> tuple[bool, str]:
    config = _exists(lab, "nacl")
    if config is None:
        return False, MISSING
    acl = troubleshoot_nacl.private_acl(lab)
    on_it = {a.get("SubnetId") for a in (acl or {}).get("Associations", [])}
    if acl is None or not on_it:
        return False, (f"the private subnets are no longer on {troubleshoot_nacl.acl_name(lab)}: the default ACL "
                       "lets everything through, but the lock-down is gone. Keep the ACL (run the break cell again "
                       "to put it back) and add the rule it lacks")
    blocked = _blocked(lab, config["FunctionName"])
    if blocked:
        return False, blocked
    passed, detail = _works(troubleshoot.try_probe(lab, config["FunctionName"]))
    return passed, detail + (f" ({troubleshoot_nacl.acl_name(lab)} still guards the private subnets)" if passed else "")


# keyed by the probe case (labkit.names.PROBE_CASES), in the notebook's order
CASES: dict[str, Case] = {
    "no-layer": Case(1, "Missing pymysql module", "Runtime.ImportModuleError",
                     "attach the lab's pymysql layer to the probe: lambda.update_function_configuration("
                     "FunctionName=<probe>, Layers=[<the layer version ARN order-validator uses>])",
                     _break_no_layer, _check_no_layer),
    "timeout": Case(2, "Lambda timeout", f"Task timed out after {BREAK_TIMEOUT}.00 seconds",
                    "fix the path, not the timeout: put the probe in lambda-sg (update_function_configuration with "
                    "VpcConfig, as order-validator has it), or let its group in where it is dropped",
                    _break_timeout, _check_timeout),
    "secret": Case(3, "Secret key error", "SecretFormatError",
                   f"point the probe at a secret in the RDS-credentials shape, the lab's {SECRET_NAME} (step 9), the one "
                   "place the password lives: lambda.update_function_configuration(FunctionName=<probe>, Environment="
                   f"{{'Variables': {{...its variables, 'DB_SECRET_NAME': '{SECRET_NAME}'}}}})",
                   _break_secret, _check_secret),
    "rds": Case(4, "RDS connection issue", "DatabaseError [MySQL error 2003]",
                "let the probe's group into rds-mysql-sg: ec2.authorize_security_group_ingress(GroupId=<rds-mysql-sg>, "
                "IpPermissions=[{'IpProtocol': 'tcp', 'FromPort': 3306, 'ToPort': 3306, 'UserIdGroupPairs': "
                "[{'GroupId': <the probe's group>}]}])", _break_rds, _check_rds),
    "no-vpc-access": Case(5, "IAM VPC permission error", "InvalidParameterValueException",
                          "iam.attach_role_policy(RoleName=<the probe's role>, PolicyArn='arn:aws:iam::aws:policy/"
                          "service-role/AWSLambdaVPCAccessExecutionRole'), then the same "
                          "update_function_configuration(VpcConfig=...) again", _break_vpc_access, _check_vpc_access),
    "no-secret-access": Case(6, "A missing permission: AccessDenied", "AccessDeniedException",
                             "iam.put_role_policy(RoleName=<the probe's role>, PolicyName=..., PolicyDocument=<Allow "
                             "secretsmanager:GetSecretValue on the secret's ARN from describe_secret>)",
                             _break_secret_access, _check_secret_access),
    "nacl": Case(7, "A network ACL: the return traffic", f"Task timed out after {BREAK_TIMEOUT}.00 seconds",
                 "network ACLs are stateless: allow the replies out of the private subnets, to the clients' "
                 "ephemeral ports: ec2.create_network_acl_entry(NetworkAclId=<the private subnets' ACL>, "
                 "RuleNumber=120, Egress=True, Protocol='6', RuleAction='allow', CidrBlock='10.0.0.0/16', "
                 "PortRange={'From': 1024, 'To': 65535})", _break_nacl, _check_nacl),
}


def _case(key: str) -> Case:
    if key not in CASES:
        raise LabkitError(f"no troubleshooting case {key!r}", f"the cases are {', '.join(CASES)}")
    return CASES[key]


def break_it(lab: Lab, key: str) -> Any:
    """Put case ``key``'s probe into its broken state and show the symptom (an :class:`Attempt`, or Lambda's
    answer to the refused call for case 5); raises :class:`BreakNotReproduced` when the symptom differs."""
    return _case(key).breaks(lab)


def check_fix(lab: Lab, key: str, require: bool = False) -> FixResult:
    """Whether your fix of case ``key`` works, asked of the cloud; ``require`` raises :class:`FixNotDone` if not
    (the notebook passes its ``solutions`` parameter: a reference fix that ran must pass)."""
    case = _case(key)
    passed, detail = case.check(lab)
    result = FixResult(case.number, case.title, passed, detail, case.hint)
    if require and not passed:
        raise FixNotDone(str(result), "the reference fix ran but the check says not yet")
    return result


def fixes_frame(lab: Lab) -> pd.DataFrame:
    """Every case with passed / not yet: number, case, passed, detail."""
    rows = []
    for key, case in CASES.items():
        result = check_fix(lab, key)
        rows.append({"case": case.number, "problem": case.title, "passed": result.passed, "detail": result.detail})
    return pd.DataFrame(rows, columns=["case", "problem", "passed", "detail"])

