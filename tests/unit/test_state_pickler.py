"""The lab's state files and the pickler, in-process (no daemon): each rule of issue 23's design round-trips with
moto's own models, a file cut short or changed is refused by name, and nothing of another service is copied."""
from __future__ import annotations

import base64
import pickle
import time
from pathlib import Path

import pytest

from tests.helpers.moto_patched import patched_moto

ACCOUNT = "000000000023"  # an account of these tests' own: moto's backends are global to the process
REGION = "us-east-1"
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},' \
        '"Action":"sts:AssumeRole"}]}'


@pytest.fixture()
def persistence(tmp_path: Path):
    """A state folder, and a function that saves everything and loads it back (as a restart does)."""
    patched_moto()
    from labkit.localcloud import server
    from labkit.localcloud.core.pickling import Rules
    from labkit.localcloud.core.state import Persistence

    rules = Rules(server.state_lists())
    first = Persistence(tmp_path, rules, sync=False)
    first.load()

    def restart() -> Persistence:
        first.save_everything()
        again = Persistence(tmp_path, rules, sync=False)
        again.load()
        assert again.restored
        return again

    first.restart = restart
    return first


def _backend(service: str, region: str = REGION):
    from moto.backends import get_backend

    return get_backend(service)[ACCOUNT][region]


def test_ssm_tags_and_parameters_come_back(persistence):
    ssm = _backend("ssm")
    ssm.put_parameter(name="/state/p", description="", value="one", parameter_type="String", allowed_pattern=None,
                      keyid=None, overwrite=False, tags=[{"Key": "k", "Value": "v"}], data_type="text", tier=None,
                      policies=None)
    persistence.restart()
    loaded = _backend("ssm")
    assert loaded is not ssm
    assert loaded.get_parameter("/state/p").value == "one"
    assert loaded.list_tags_for_resource("Parameter", "/state/p") == {"k": "v"}
    loaded._resource_tags["Parameter"]["/other"]["a"] = "b"  # the factory works again after the load


def test_a_lambda_function_and_its_alias_come_back_usable(persistence):
    from tests.helpers import make_zip

    _backend("iam", "aws").create_role("state-fn-role", TRUST, "/", None, "", [], 3600, None)
    lam = _backend("lambda")
    code = make_zip({"lambda_function.py": "def lambda_handler(e, c):\n    return 1\n"})
    lam.create_function({"FunctionName": "state-fn", "Runtime": "python3.11", "Handler": "lambda_function.h",
                         "Role": f"arn:aws:iam::{ACCOUNT}:role/state-fn-role",
                         "Code": {"ZipFile": base64.b64encode(code).decode()}})
    fn = lam.get_function("state-fn")
    fn._labkit_revision = "warm-pool"
    lam.publish_version("state-fn")
    lam.create_alias("live", "state-fn", "1", "", None)
    persistence.restart()
    loaded = _backend("lambda").get_function("state-fn")
    assert vars(loaded)["_DockerModel__docker_client"] is None  # moto's __getstate__ drops it: made lazily again
    assert "_labkit_revision" not in vars(loaded), "a restart is a cold start: no warm pool is kept"
    assert _backend("lambda").get_alias("live", "state-fn").function_version == "1"
    assert _backend("lambda").get_function(loaded.function_arn) is loaded  # the weak map by ARN is rebuilt


def test_iam_keeps_the_aws_policies_in_use_and_drops_the_listed_rest(persistence):
    iam = _backend("iam", "aws")
    iam.create_role("state-role", TRUST, "/", None, "", [], 3600, None)
    iam.attach_role_policy("arn:aws:iam::aws:policy/ReadOnlyAccess", "state-role")
    iam.managed_policies.load_all()  # as ListPolicies does: every AWS managed policy (14 MiB)
    assert dict.__len__(iam.managed_policies) > 1000
    again = persistence.restart()
    path = again.store.path(("iam", ACCOUNT, "aws"))
    assert path.stat().st_size < 500_000, "only the AWS policies in use are saved"
    loaded = _backend("iam", "aws")
    assert "arn:aws:iam::aws:policy/ReadOnlyAccess" in loaded.get_role("state-role").managed_policies
    assert "arn:aws:iam::aws:policy/AmazonS3ReadOnlyAccess" in loaded.managed_policies  # made again when named


def test_a_role_session_s_key_is_the_one_iam_keeps(persistence):
    iam = _backend("iam", "aws")
    role = iam.create_role("state-session", TRUST, "/", None, "", [], 3600, None)
    session = _backend("sts", "aws").assume_role(region_name=REGION, role_session_name="s", role_arn=role.arn,
                                                  policy="", duration=900, external_id="")
    again = persistence.restart()
    loaded = _backend("sts", "aws").get_assumed_role_from_access_key(session.access_key_id)
    assert loaded.access_key is next(k for k in _backend("iam", "aws").access_keys.values()
                                     if k.access_key_id == session.access_key_id)
    assert not again.audit()


def test_an_instance_s_profile_is_the_one_iam_keeps(persistence):
    iam, ec2 = _backend("iam", "aws"), _backend("ec2")
    iam.create_role("state-ec2-role", TRUST, "/", None, "", [], 3600, None)
    iam.create_instance_profile("state-profile", "/", ["state-ec2-role"])
    reservation = ec2.run_instances("ami-12c6146b", 1, None, [], instance_type="t3.micro",
                                    is_instance_type_default=False)
    ec2.associate_iam_instance_profile(reservation.instances[0].id, "state-profile", None)
    again = persistence.restart()
    association = next(iter(_backend("ec2").iam_instance_profile_associations.values()))
    assert association.iam_instance_profile is _backend("iam", "aws").get_instance_profile("state-profile")
    assert not again.audit()


def test_an_rds_subnet_group_points_at_the_live_ec2_subnets(persistence):
    from labkit.localcloud.core.statefiles import decode

    ec2 = _backend("ec2")
    vpc = ec2.create_vpc("10.23.0.0/16")
    subnets = [ec2.create_subnet(vpc.id, f"10.23.{n}.0/24", availability_zone=f"{REGION}{z}")
               for n, z in ((1, "a"), (2, "b"))]
    _backend("rds").create_subnet_group("state-group", "d", subnets, [])
    again = persistence.restart()
    rds_file = again.store.path(("rds", ACCOUNT, REGION))
    meta, _ = decode(rds_file)
    assert meta["refs"] == [["ec2", ACCOUNT, REGION]], "RDS refers to EC2 instead of carrying a copy of it"
    loaded_ec2 = _backend("ec2")
    group = _backend("rds").subnet_groups["state-group"]
    assert all(s is loaded_ec2.get_subnet(s.id) for s in group._subnets)
    assert not again.audit(), "no backend's save copies another service's objects"


def test_s3_bodies_are_files_named_by_digest_and_a_new_body_is_saved_anew(persistence):
    s3 = _backend("s3", "aws")
    s3.create_bucket("state-bucket-23", REGION)
    s3.put_object("state-bucket-23", "a.txt", b"first")
    persistence.save_everything()
    key = s3.get_object("state-bucket-23", "a.txt")
    assert "_labkit_blob" in vars(key)
    key.value = b"second"  # moto writes a new body: the digest of the first no longer applies
    assert "_labkit_blob" not in vars(key)
    again = persistence.restart()
    assert _backend("s3", "aws").get_object("state-bucket-23", "a.txt").value == b"second"
    blobs = {p.name for p in (again.root / "blobs").iterdir()}
    assert len(blobs) == 1, "the first body belongs to nothing any more and is collected at the load"


def test_log_events_and_metric_data_are_saved_in_chunks_each_pickled_once(persistence, monkeypatch):
    from labkit.localcloud.core import chunks
    from labkit.localcloud.core.statefiles import BlobStore

    puts: list[int] = []
    real_put = BlobStore.put
    monkeypatch.setattr(BlobStore, "put", lambda self, body, digest=None: puts.append(len(body)) or real_put(
        self, body, digest))
    logs, cloudwatch = _backend("logs"), _backend("cloudwatch")
    now_ms = int(time.time() * 1000)  # (CloudWatch Logs refuses events older than 14 days)
    logs.create_log_group("/aws/lambda/chunked", {})
    logs.create_log_stream("/aws/lambda/chunked", "stream-1")

    def put_events(first: int, count: int) -> None:
        logs.put_log_events("/aws/lambda/chunked", "stream-1",
                            [{"timestamp": now_ms + n, "message": f"line {n}"} for n in range(first, first + count)])
        cloudwatch.put_metric_data("Chunked/Test", [{"MetricName": "Duration", "Value": float(n)}
                                                    for n in range(first, first + count)])

    put_events(0, 2 * chunks.CHUNK_ITEMS + 10)
    persistence.save_everything()
    chunk_puts = [size for size in puts if size > 4096]  # (another test's S3 body is saved too: a few bytes)
    assert len(chunk_puts) == 4, "two full chunks of events and two of metric data, each a blob"
    first_save = len(puts)
    logs_file = persistence.store.path(("logs", ACCOUNT, REGION)).stat().st_size
    put_events(2 * chunks.CHUNK_ITEMS + 10, chunks.CHUNK_ITEMS)
    persistence.save_everything()
    assert len(puts) - first_save == 2, "a save pickles only the chunks filled since the last one"
    assert persistence.store.path(("logs", ACCOUNT, REGION)).stat().st_size < logs_file + 4096
    persistence.restart()
    stream = _backend("logs").groups["/aws/lambda/chunked"].streams["stream-1"]
    assert [e.message for e in stream.events] == [f"line {n}" for n in range(3 * chunks.CHUNK_ITEMS + 10)]
    assert chunks.CACHE not in vars(stream)
    values = [m.value for m in _backend("cloudwatch").metric_data if m.namespace == "Chunked/Test"]
    assert values == [float(n) for n in range(3 * chunks.CHUNK_ITEMS + 10)]
    _backend("logs").delete_log_group("/aws/lambda/chunked")


def test_log_events_and_data_points_saved_as_columns_come_back_with_every_attribute(persistence):
    import datetime as dt

    from moto.cloudwatch.models import MetricAggregatedDatum

    from labkit.localcloud.core import chunks

    logs, cloudwatch = _backend("logs"), _backend("cloudwatch")
    now_ms = int(time.time() * 1000)
    logs.create_log_group("/aws/lambda/columns", {})
    logs.create_log_stream("/aws/lambda/columns", "s")
    logs.put_log_events("/aws/lambda/columns", "s", [{"timestamp": now_ms + n, "message": f"line {n} \u00e9"}
                                                     for n in range(chunks.CHUNK_ITEMS + 7)])
    stamp = dt.datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=dt.timezone.utc)
    cloudwatch.put_metric_data("Columns/Test", [
        {"MetricName": "Duration", "Timestamp": stamp, "Unit": "Milliseconds", "Values": [1.5, 2.5], "Counts": [2, 1],
         "Dimensions": [{"Name": "FunctionName", "Value": "f"}, {"Name": "Resource", "Value": "f:1"}]},
        {"MetricName": "Bare", "Value": 3.0},
        {"MetricName": "Stats", "Timestamp": stamp, "StatisticValues": {"Sum": 9.0, "Minimum": 1.0, "Maximum": 5.0,
                                                                        "SampleCount": 3.0}}])
    stream = logs.groups["/aws/lambda/columns"].streams["s"]
    before = [vars(e).copy() for e in stream.events]
    mine = [m for m in cloudwatch.metric_data if m.namespace == "Columns/Test"]
    assert any(isinstance(m, MetricAggregatedDatum) for m in mine), "a record of another shape: saved as it is"

    def shape(datum):
        return (type(datum), {k: v for k, v in vars(datum).items() if k != "dimensions"},
                [vars(d) for d in datum.dimensions])

    points = [shape(m) for m in mine]
    persistence.restart()
    stream = _backend("logs").groups["/aws/lambda/columns"].streams["s"]
    assert [vars(e) for e in stream.events] == before, "ingestion time, timestamp, message and id, in that order"
    assert [list(vars(e)) for e in stream.events[:1]] == [list(before[0])]
    assert [shape(m) for m in _backend("cloudwatch").metric_data if m.namespace == "Columns/Test"] == points
    _backend("logs").delete_log_group("/aws/lambda/columns")


def test_an_unchanged_tail_is_not_packed_again_and_a_rewrite_packs_everything_again(persistence, monkeypatch):
    from labkit.localcloud.core import chunks

    logs = _backend("logs")
    now_ms = int(time.time() * 1000)
    logs.create_log_group("/aws/lambda/tails", {})
    for name in ("quiet", "busy"):
        logs.create_log_stream("/aws/lambda/tails", name)
        logs.put_log_events("/aws/lambda/tails", name, [{"timestamp": now_ms, "message": f"{name} 0"}])
    packs: list[int] = []
    real_pack = chunks.Columns.pack
    monkeypatch.setattr(chunks.Columns, "pack", lambda self, items: packs.append(len(items)) or real_pack(self, items))
    key = ("logs", ACCOUNT, REGION)
    persistence.store.save(key, logs)
    first = len(packs)
    logs.put_log_events("/aws/lambda/tails", "busy", [{"timestamp": now_ms + 1, "message": "busy 1"}])
    persistence.store.save(key, logs)
    assert packs[first:] == [2], "only the stream that changed is packed again"
    persistence.store.save(key, logs)
    assert len(packs) == first + 1
    quiet = logs.groups["/aws/lambda/tails"].streams["quiet"]
    assert persistence.rewrite("quiet 0", "moved 0") == 1
    persistence.store.save(key, logs)
    assert len(packs) == first + 1 + first, "after a rewrite every tail is packed again"
    persistence.restart()
    quiet = _backend("logs").groups["/aws/lambda/tails"].streams["quiet"]
    assert [e.message for e in quiet.events] == ["moved 0"]
    _backend("logs").delete_log_group("/aws/lambda/tails")


def test_a_stream_that_stays_quiet_is_named_by_the_file_not_written_again(persistence, monkeypatch):
    from labkit.localcloud.core import chunks

    logs = _backend("logs")
    now_ms = int(time.time() * 1000)
    logs.create_log_group("/aws/lambda/quiet", {})
    logs.create_log_stream("/aws/lambda/quiet", "gone")  # a worker's stream, the worker reaped
    logs.put_log_events("/aws/lambda/quiet", "gone", [{"timestamp": now_ms + n, "message": "x" * 200 + str(n)}
                                                       for n in range(chunks.CHUNK_ITEMS + 100)])
    key, path = ("logs", ACCOUNT, REGION), persistence.store.path(("logs", ACCOUNT, REGION))
    persistence.store.save(key, logs)
    inline = path.stat().st_size
    assert inline > 100 * 200, "the tail of a stream that just changed is in the backend's file"
    monkeypatch.setattr(chunks, "QUIET_SECONDS", 0.0)
    persistence.store.save(key, logs)
    assert path.stat().st_size < inline - 100 * 200, "once quiet, its tail is a blob the file names"
    lines = ["x" * 200 + str(n) for n in range(chunks.CHUNK_ITEMS + 100)]
    again = persistence.restart()
    logs = _backend("logs")
    assert [e.message for e in logs.groups["/aws/lambda/quiet"].streams["gone"].events] == lines
    logs.put_log_events("/aws/lambda/quiet", "gone", [{"timestamp": now_ms + 999, "message": "back"}])
    monkeypatch.setattr(chunks, "QUIET_SECONDS", 60.0)
    again.store.save(key, logs)
    assert path.stat().st_size > inline, "a stream written again has its tail in the file again"
    persistence.restart()
    assert [e.message for e in _backend("logs").groups["/aws/lambda/quiet"].streams["gone"].events] == [*lines, "back"]
    _backend("logs").delete_log_group("/aws/lambda/quiet")


def test_the_requests_of_a_batch_are_saved_once_when_it_ends(persistence, monkeypatch):
    from types import SimpleNamespace

    from labkit.localcloud.core.state import BATCH_HEADER

    saved: list[tuple[str, str]] = []
    monkeypatch.setattr(persistence.store, "save_request", lambda service, region: saved.append((service, region)))

    def request(operation: str, headers: dict[str, str], service: str = "logs") -> None:
        call = SimpleNamespace(operation=operation, service=service, region=REGION,
                               request=SimpleNamespace(headers=headers))
        persistence.after_request(call, 200)

    with persistence.batch() as headers:
        assert set(headers) == {BATCH_HEADER}
        for _ in range(3):
            request("PutLogEvents", headers)
        request("PutMetricData", headers, "monitoring")
        assert saved == [], "nothing is saved before the batch ends"
        request("PutLogEvents", {BATCH_HEADER: "guessed"})
        request("PutLogEvents", {})
        assert saved == [("logs", REGION)] * 2, "a request without the daemon's own header is saved before its answer"
        request("DescribeLogGroups", headers)
    assert sorted(saved[2:]) == [("logs", REGION), ("monitoring", REGION)], "once per service, when the batch ends"
    request("PutLogEvents", headers)
    assert saved[4:] == [("logs", REGION)], "after the batch, its header defers nothing"


def test_an_unknown_lambda_factory_fails_the_save_with_its_name(persistence):
    import collections

    from labkit.localcloud.core.pickling import dump

    ssm = _backend("ssm")
    ssm._resource_tags["Unknown"] = collections.defaultdict(lambda: 1)
    try:
        with pytest.raises(pickle.PicklingError, match="test_an_unknown_lambda_factory"):
            dump(ssm, persistence.store.rules, persistence.store.blobs)
    finally:
        del ssm._resource_tags["Unknown"]


def test_a_file_cut_short_or_changed_is_refused_by_name(tmp_path):
    from labkit.localcloud.core.statefiles import StateError, decode, encode, write_atomic

    path = tmp_path / "moto" / "ec2" / "a.pkl"
    write_atomic(path, encode({"service": "ec2"}, b"x" * 1000))
    assert decode(path)[1] == b"x" * 1000
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(StateError, match=rf"{path}.*damaged"):
        decode(path)
    path.write_bytes(data[:-1] + b"y")
    with pytest.raises(StateError, match="checksum"):
        decode(path)
    path.write_bytes(b"garbage")
    with pytest.raises(StateError, match="not a labkit state file"):
        decode(path)


def test_a_write_that_fails_leaves_the_old_file_whole(tmp_path, monkeypatch):
    import os

    from labkit.localcloud.core.statefiles import write_atomic

    path = tmp_path / "f"
    write_atomic(path, b"old")

    def broken(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fdatasync", broken)
    with pytest.raises(OSError):
        write_atomic(path, b"new" * 100)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"], "no temporary file is left behind"


def test_missed_schedules_older_than_a_day_are_skipped_in_one_step():
    import datetime as dt

    from labkit.localcloud.events.schedules import skip_older

    now = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.timezone.utc)
    first = now - dt.timedelta(days=30)
    due, skipped = skip_older("rate(1 minute)", first, now - dt.timedelta(days=1))
    assert skipped == 29 * 24 * 60 and due == now - dt.timedelta(days=1)
    six = dt.datetime(2026, 1, 7, 6, 0, tzinfo=dt.timezone.utc)
    due, skipped = skip_older("cron(0 6 * * ? *)", six, now - dt.timedelta(days=1))
    assert (skipped, due) == (3, six + dt.timedelta(days=3))
