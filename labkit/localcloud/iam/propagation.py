"""IAM's eventual consistency, in realistic mode (:mod:`labkit.localcloud.core.timing`, delay ``iam_propagation``).

AWS: "IAM ... is eventually consistent ... Changes that I make are not always immediately visible": a change is
made in one control plane and reaches the data planes that authorize requests seconds later. Here the control
plane (moto's IAM records, what Get/List calls show) changes at once, as on AWS; what authorizes requests -- the
policies of a caller, a role's trust policy for AssumeRole, Lambda's check of an execution role -- reads the state
IAM had ``iam_propagation`` seconds of lab time ago. A :class:`Propagation` keeps the states each IAM change left
(taken right after it, and the one before the first change), and answers the one in force at a given time.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
BEFORE_ANY = float("-inf")


class Propagation(Generic[T]):
    """The states of IAM after each change, by lab time; ``capture`` reads the current one."""

    def __init__(self, capture: Callable[[], T]) -> None:
        self.capture = capture
        self.lock = threading.Lock()
        self.states: list[tuple[float, T]] = []

    def clear(self) -> None:
        """Forget every change (fast mode: the data plane reads the records as they are)."""
        with self.lock:
            self.states = []

    def before_change(self) -> None:
        """An IAM change is about to be made: keep the state before it if nothing is kept yet."""
        with self.lock:
            if not self.states:
                self.states.append((BEFORE_ANY, self.capture()))

    def after_change(self, now: float, delay: float) -> None:
        """An IAM change was made at lab time ``now``: keep the state it left; drop states no reader can need."""
        state = self.capture()
        with self.lock:
            if self.states and self.states[-1][1] == state:
                return  # a refused or idle change: nothing new reaches the data plane
            self.states.append((now, state))
            in_force = [i for i, (at, _s) in enumerate(self.states) if at <= now - delay]
            if in_force:
                del self.states[:in_force[-1]]

    def view(self, now: float, delay: float) -> T | None:
        """The state in force at lab time ``now`` (None: no change is pending, read the records themselves)."""
        with self.lock:
            if not self.states:
                return None
            in_force = [state for at, state in self.states if at <= now - delay]
            if len(in_force) == len(self.states):  # the newest change has propagated: nothing is pending
                self.states = self.states[-1:]
                return None
            return in_force[-1] if in_force else self.states[0][1]
