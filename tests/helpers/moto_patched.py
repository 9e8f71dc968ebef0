"""moto in the test's own process, patched as the daemon patches it (for tests of the records without a daemon)."""
from __future__ import annotations

import functools
import os


@functools.cache
def patched_moto() -> None:
    """Apply the daemon's patches to moto once per process (managed policies on demand, the S3 body digest,
    models untracked, ...), as in the daemon."""
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    from labkit.localcloud import server
    from labkit.localcloud.core import patches
    from labkit.localcloud.core.services import Registry

    patches.apply(Registry(), (patches.core_patches, *server.patch_lists()))
