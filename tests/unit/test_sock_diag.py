"""The kernel's sock_diag answer: an error is raised with its errno, never read as "nothing listens"."""
from __future__ import annotations

import socket
import struct

import pytest

from labkit.localcloud.network import wiring as nw


def test_kernel_error_is_raised() -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, nw.NETLINK_SOCK_DIAG) as nl:
        request = struct.pack("=BBBBI", 250, socket.IPPROTO_TCP, 0, 0, 0) + bytes(48)  # no such family
        nl.send(struct.pack("=IHHII", 16 + len(request), nw.SOCK_DIAG_BY_FAMILY, nw.NLM_F_REQUEST | nw.NLM_F_DUMP,
                            1, 0) + request)
        with pytest.raises(OSError) as raised:
            list(nw._dump(nl))
    assert raised.value.errno


def test_listening_socket_is_found() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        assert port in nw.listening_ports(["127.0.0.1"])["127.0.0.1"]
