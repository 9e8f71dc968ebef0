"""The network's decision socket: in the lab home, or in a private directory when the home is too long."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from labkit.localcloud.network.wiring import socket_path


def test_short_home_keeps_its_socket(tmp_path: Path) -> None:
    assert socket_path(tmp_path) == str(tmp_path / "net.sock")


def test_long_home_gets_a_private_directory(tmp_path: Path) -> None:
    home = tmp_path / ("x" * 120)
    paths = [socket_path(home), socket_path(home)]
    try:
        assert all(len(p.encode()) <= 107 for p in paths)
        assert stat.S_IMODE(os.stat(os.path.dirname(paths[0])).st_mode) == 0o700
        assert paths[0] != paths[1]  # never a predictable name
    finally:
        for path in paths:
            os.rmdir(os.path.dirname(path))
