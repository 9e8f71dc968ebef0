"""The daemon keeps HTTP/1.1 connections open between requests, as AWS's endpoints do, and never reads one
request's leftovers as the next request."""
from __future__ import annotations

import http.client
import json
import socket


def _connection(cloud) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", cloud.status.port, timeout=10)


def _read_response(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    """One response read off a raw socket: status line, headers, a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the connection closed mid-response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return status, headers, body


def test_requests_share_one_connection_and_a_body_left_unread_does_not_leak(cloud):
    conn = _connection(cloud)
    # an unsigned AWS API call: refused before anything reads its body
    conn.request("POST", "/", body=b"Action=ListUsers&Version=2010-05-08&" + b"x" * 50_000,
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    refused = conn.getresponse()
    refused.read()
    assert refused.status == 403 and refused.getheader("Connection") != "close"
    first_socket = conn.sock
    for _ in range(2):
        conn.request("GET", "/_labkit/health")
        answer = conn.getresponse()
        assert answer.status == 200 and json.loads(answer.read())["status"] == "ok"
    assert conn.sock is first_socket  # http.client reconnects (a new socket) when the server closed
    conn.close()


def test_a_body_sent_after_100_continue_is_read_and_the_connection_kept(cloud):
    with socket.create_connection(("127.0.0.1", cloud.status.port), timeout=10) as sock:
        body = b"Action=ListUsers&Version=2010-05-08"
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Type: "
                     b"application/x-www-form-urlencoded\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n")
        interim = sock.recv(4096)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")  # sent before the body is read
        sock.sendall(body)
        status, headers, _ = _read_response(sock)
        assert status.split()[1] == "403" and headers.get("connection") != "close"
        sock.sendall(b"GET /_labkit/health HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, answer = _read_response(sock)
        assert status.split()[1] == "200" and json.loads(answer)["status"] == "ok"


def test_a_chunked_request_is_answered_and_its_connection_closed(cloud):
    with socket.create_connection(("127.0.0.1", cloud.status.port), timeout=10) as sock:
        sock.sendall(b"POST /_labkit/health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5\r\nhello\r\n0\r\n\r\n")
        status, headers, _ = _read_response(sock)
        assert headers.get("connection") == "close"
        sock.settimeout(5)
        rest = b""
        while chunk := sock.recv(4096):
            rest += chunk
        assert b"HTTP/1.1" not in rest  # nothing more is answered on it: the server closed it


def test_an_http_1_0_client_gets_its_connection_closed(cloud):
    with socket.create_connection(("127.0.0.1", cloud.status.port), timeout=10) as sock:
        sock.sendall(b"GET /_labkit/health HTTP/1.0\r\nHost: x\r\n\r\n")
        status, headers, body = _read_response(sock)
        assert status.split()[1] == "200" and json.loads(body)["status"] == "ok"
        sock.settimeout(5)
        assert sock.recv(4096) == b""


def test_a_change_of_the_vpc_closes_kept_connections_so_the_next_one_is_decided_anew(cloud):
    idle = _connection(cloud)
    idle.request("GET", "/_labkit/health")
    idle.getresponse().read()
    ec2 = cloud.client("ec2")
    vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
    changing = ec2.create_security_group(GroupName="keepalive-change", Description="d", VpcId=vpc)
    group = changing["GroupId"]
    # the change's own connection says so in its answer: the client must not send the next request on it
    assert changing["ResponseMetadata"]["HTTPHeaders"].get("connection") == "close"
    try:
        idle.sock.settimeout(5)
        assert idle.sock.recv(1) == b""  # closed by the daemon, not by a timeout
    finally:
        idle.close()
        ec2.delete_security_group(GroupId=group)


def test_a_request_arriving_on_a_connection_as_it_is_cut_is_not_run():
    """close_idle_connections may cut a connection whose next request is already read but not yet parsed: that
    request must not run, since its answer cannot be sent and the client resends it (a RunInstances twice)."""
    import threading

    from werkzeug.serving import ThreadedWSGIServer

    from labkit.localcloud.core import http_keepalive

    runs, arrived, go, done = [], threading.Event(), threading.Event(), threading.Event()

    class Paused(http_keepalive.KeepAliveRequestHandler):
        def parse_request(self) -> bool:
            if self.raw_requestline.startswith(b"POST /second"):
                arrived.set()
                go.wait(10)
            return super().parse_request()

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            finally:
                if arrived.is_set():
                    done.set()  # the second request is handled (run or not)

    def app(environ, start_response):
        runs.append(environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    server = ThreadedWSGIServer("127.0.0.1", 0, app, handler=Paused)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=10) as sock:
            sock.sendall(b"POST /first HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            status, _, body = _read_response(sock)
            assert status.split()[1] == "200" and body == b"ok"  # kept open: idle now
            sock.sendall(b"POST /second HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            assert arrived.wait(10)  # read off the socket, not parsed yet
            http_keepalive.close_idle_connections()
            go.set()
            assert sock.recv(4096) == b""  # closed without an answer: the client may resend
        assert done.wait(10)
        assert runs == ["/first"]
    finally:
        go.set()
        server.shutdown()
        server.server_close()
