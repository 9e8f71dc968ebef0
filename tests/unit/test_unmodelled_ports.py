"""Why a port cannot be modelled at a public IP, told truly: a privileged port (non-root) or another program."""
from __future__ import annotations

import errno
import socket

from labkit.localcloud.control import unprivileged_port_start
from labkit.localcloud.network.instances import unmodelled_reason


def _bind_error(address: tuple[str, int]) -> OSError | None:
    with socket.socket() as sock:
        try:
            sock.bind(address)
        except OSError as exc:
            return exc
    return None


def test_port_held_by_a_wildcard_program_is_named_so() -> None:
    with socket.create_server(("0.0.0.0", 0)) as held:  # the wildcard bind is the case under test
        exc = _bind_error(("127.0.0.1", held.getsockname()[1]))
    assert exc is not None and exc.errno == errno.EADDRINUSE
    assert unmodelled_reason(exc).startswith("answered by another program on this machine")


def test_privileged_port_is_named_so() -> None:
    start = unprivileged_port_start()
    reason = unmodelled_reason(OSError(errno.EACCES, "Permission denied"))
    assert f"below {start} needs root" in reason and "another program" not in reason
    if start > 22:  # the real thing, where it is real: a non-root process cannot bind port 22
        exc = _bind_error(("127.0.0.1", 22))
        if exc is not None and exc.errno == errno.EACCES:
            assert unmodelled_reason(exc) == reason
