"""Every change the local cloud makes to moto, listed: ``python -m labkit.localcloud.patches``.

Each service package keeps its patches beside its service (``<service>/patches.py``);
:mod:`labkit.localcloud.core.patches` checks and applies them for the pinned moto version.
"""
from __future__ import annotations

from labkit.localcloud.core.patches import core_patches, describe
from labkit.localcloud.server import patch_lists


def rows() -> list[dict[str, str]]:
    """Every patch as a row: ``patch`` (what is replaced) and ``why``."""
    return describe((core_patches, *patch_lists()))


if __name__ == "__main__":
    for row in rows():
        print(f"{row['patch']}\n    {row['why']}")
