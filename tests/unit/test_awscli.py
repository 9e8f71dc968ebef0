"""`labkit cloud env`'s `aws`: the AWS CLI with --endpoint-url $AWS_ENDPOINT_URL (pip's v1 ignores the variable for
rds in us-east-1), first on PATH once the output is eval'ed, idempotent."""
from __future__ import annotations

import os
import subprocess

from labkit import awscli


def _fake_cli(tmp_path):
    fake = tmp_path / "real" / "aws"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho "args: $*"\n')
    fake.chmod(0o755)
    return fake


def test_the_wrapper_adds_the_endpoint_only_when_there_is_one(tmp_path):
    folder = awscli.write_wrapper(tmp_path / "home", _fake_cli(tmp_path))
    run = {"PATH": f"{folder}:/usr/bin:/bin"}
    with_endpoint = subprocess.run(["aws", "rds", "describe-events"], env={**run, "AWS_ENDPOINT_URL": "http://127.0.0.1:9"},
                                   capture_output=True, text=True, check=True)
    assert with_endpoint.stdout == "args: --endpoint-url http://127.0.0.1:9 rds describe-events\n"
    without = subprocess.run(["aws", "--version"], env=run, capture_output=True, text=True, check=True)
    assert without.stdout == "args: --version\n"


def test_a_missing_cli_says_how_to_install_it(tmp_path):
    folder = awscli.write_wrapper(tmp_path / "home", tmp_path / "nowhere" / "aws")
    done = subprocess.run([str(folder / "aws"), "s3", "ls"], capture_output=True, text=True)
    assert done.returncode == 127 and "run make setup" in done.stderr


def test_evaluating_the_lines_twice_puts_the_folder_on_path_once(tmp_path):
    home = tmp_path / "home with space"
    lines = awscli.shell_lines({"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_REGION": "us-east-1"}, home)
    script = "\n".join(lines)
    done = subprocess.run(["bash", "-c", 'eval "$1"; eval "$1"; echo "$PATH"; echo "$AWS_ENDPOINT_URL"',
                           "_", script], env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True)
    path, endpoint = done.stdout.splitlines()
    assert path == f"{home.resolve() / 'bin'}:/usr/bin:/bin" and endpoint == "http://127.0.0.1:9"
    assert os.access(home / "bin" / "aws", os.X_OK)


def test_for_v1_the_wrapper_drops_v2s_raw_binary_format(tmp_path):
    """labkit shows `aws lambda invoke ... --cli-binary-format raw-in-base64-out` (v2); v1 has no such option and
    already sends a payload as given, so its wrapper drops exactly that option (another value is v1's to refuse)."""
    fake = tmp_path / "real" / "aws"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "aws-cli/1.46.3 Python/3.11"; exit 0; }\n'
                    'printf "%s|" "$@"; echo\n')
    fake.chmod(0o755)
    folder = awscli.write_wrapper(tmp_path / "home", fake)
    env = {"PATH": f"{folder}:/usr/bin:/bin"}

    def run(*args: str) -> str:
        return subprocess.run(["aws", *args], env=env, capture_output=True, text=True, check=True).stdout.strip()

    assert run("lambda", "invoke", "--cli-binary-format", "raw-in-base64-out", "--payload", "{}",
               "out.json") == "lambda|invoke|--payload|{}|out.json|"
    assert run("lambda", "invoke", "--cli-binary-format=raw-in-base64-out", "o.json") == "lambda|invoke|o.json|"
    assert run("x", "--cli-binary-format", "base64", "a b") == "x|--cli-binary-format|base64|a b|"
    assert run("x", "--cli-binary-format") == "x|--cli-binary-format|"
    assert awscli.write_wrapper(tmp_path / "other", _fake_cli(tmp_path / "v2")).joinpath("aws").read_text().count(
        "raw-in-base64-out") == 0, "a CLI that is not v1 gets no such filter"
