"""What one boto3 ``lambda.invoke`` costs the caller's own CPU, with nothing behind it: the floor of the app's part
of an order (issue 28).

The app's every order is a signed Invoke (serialise, SigV4, urllib3, parse the answer), as on EC2. Here the same
call goes to a stub in another process that answers at once (so the stub's CPU is not counted), on one keep-alive
connection; the script prints the caller's CPU and wall time per call. ``bench_order_path.py`` prints the ceiling
of the whole path; this is one of the parts that bound it whatever the local cloud costs.
``python bench/bench_invoke_client.py [--calls N]``
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.common import free_port
from tests.helpers import until

STUB = r"""
import http.server, sys
class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = b'{"statusCode": 201}'
        head = ("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Amz-Executed-Version: $LATEST\r\n"
                f"Content-Length: {len(body)}\r\n\r\n")
        self.wfile.write(head.encode() + body)  # one write: a second small one would wait for a delayed ACK
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Answer).serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    port = free_port()
    stub = subprocess.Popen([sys.executable, "-c", STUB, str(port)])
    try:
        client = boto3.client("lambda", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                              aws_access_key_id="AKIABENCHINVOKE00000", aws_secret_access_key="bench",
                              config=Config(retries={"max_attempts": 1}))
        payload = json.dumps({"order_id": "5b0e6a8e-3f8c-4d55-9d1e-2f5a9c1e7b10", "customer_name": "bench",
                              "product": "item-00001", "quantity": 2, "amount": "12.50"})
        until(lambda: invoke(client, payload), seconds=10,
              ignoring=(EndpointConnectionError,), message="the stub to answer")
        for _ in range(200):  # warm: the connection, botocore's caches
            invoke(client, payload)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(args.calls):
            invoke(client, payload)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        print(f"boto3 lambda.invoke, {args.calls} calls on one connection to a stub that answers at once")
        print(f"the caller's CPU per call   {1000 * cpu / args.calls:.3f} ms")
        print(f"wall time per call          {1000 * wall / args.calls:.3f} ms")
    finally:
        stub.terminate()
        stub.wait(timeout=10)


def invoke(client, payload: str) -> bytes:
    """One Invoke, its answer read as the app reads it (an unread answer keeps its connection from the pool)."""
    return client.invoke(FunctionName="order-validator", Payload=payload)["Payload"].read()


if __name__ == "__main__":
    main()
