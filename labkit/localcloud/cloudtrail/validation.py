"""What CloudTrail's LookupEvents checks itself, with its own error codes (:mod:`.service` answers them), rather
than with the generic validation message: MaxResults 1-50 (``InvalidMaxResultsException``)."""
from __future__ import annotations

from collections.abc import Iterable

from labkit.localcloud.core.validation import Adjust, Rule


def rules() -> Iterable[Rule | Adjust]:
    return [Adjust("cloudtrail", "MaxResults", None)]
