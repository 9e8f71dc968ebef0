"""Cold start of a trivial function; warm invoke p50/p99 over 200 calls; throughput with 4 callers."""
from __future__ import annotations

import io
import threading
import time
import zipfile

from common import LAMBDA_TRUST, client, local_cloud, percentile, report

from labkit.lambda_platform import runtime as lambda_runtime

SOURCE = "def lambda_handler(event, context):\n    return {'ok': True}\n"


def main() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lambda_function.py", SOURCE)
    with local_cloud() as status:
        iam, lam = client(status, "iam"), client(status, "lambda")
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
        lam.create_function(FunctionName="trivial", Runtime=lambda_runtime(), Role=role,
                            Handler="lambda_function.lambda_handler", Code={"ZipFile": buffer.getvalue()})
        started = time.perf_counter()
        lam.invoke(FunctionName="trivial")["Payload"].read()
        report("cold start (first invoke, boto3 round trip)", (time.perf_counter() - started) * 1000, "ms",
               "(target <= 1000 ms)")
        times = []
        for _ in range(200):
            started = time.perf_counter()
            lam.invoke(FunctionName="trivial")["Payload"].read()
            times.append((time.perf_counter() - started) * 1000)
        report("warm invoke p50 (boto3 round trip)", percentile(times, 50), "ms", "(target <= 5 ms)")
        report("warm invoke p99 (boto3 round trip)", percentile(times, 99), "ms")

        count, seconds = 0, 5.0
        lock = threading.Lock()

        def caller() -> None:
            nonlocal count
            own = client(status, "lambda")
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline:
                own.invoke(FunctionName="trivial")["Payload"].read()
                with lock:
                    count += 1

        threads = [threading.Thread(target=caller) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        report("invocations per second, 4 concurrent callers", count / seconds, "inv/s")


if __name__ == "__main__":
    main()
