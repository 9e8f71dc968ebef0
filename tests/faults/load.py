"""Orders through the app's JSON API under a fault, and what the database holds afterwards.

Shared by the fault tests (small scale) and ``bench/bench_faults.py`` (1,500 orders, 8 threads). A client
gives each order its id before the first attempt and, once the fault is over, sends every order whose fate
it does not know again with the same id: that is how a client learns an order's fate without guessing.
"""
from __future__ import annotations

import collections
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

OK = (200, 201)
ATTEMPT_TIMEOUT = 90.0  # beyond the app's own worst case (two validator attempts of 30 s + margins)


@dataclass
class Outcome:
    order_id: str
    marker: str
    first: int | None = None  # status of the first attempt (None: no answer)
    final: int | None = None
    attempts: int = 0


@dataclass
class Verdict:
    first_statuses: dict[str, int]
    final_statuses: dict[str, int]
    lost: list[str]
    duplicated: list[str]
    stored_without_2xx: list[str]
    not_retrievable: list[str]
    recover_seconds: float | None
    extra: dict = field(default_factory=dict)

    def line(self) -> str:
        return (f"first attempts {self.first_statuses}; after re-sending {self.final_statuses}; "
                f"lost {len(self.lost)}, duplicated {len(self.duplicated)}, stored without 2xx "
                f"{len(self.stored_without_2xx)} (not retrievable {len(self.not_retrievable)}), "
                f"recovered in {self.recover_seconds if self.recover_seconds is None else round(self.recover_seconds, 1)} s")


def post_order(base_url: str, order: dict, order_id: str, timeout: float = ATTEMPT_TIMEOUT) -> int | None:
    """One attempt; the HTTP status, or None when the app did not answer."""
    body = json.dumps({**order, "order_id": order_id}).encode()
    request = urllib.request.Request(base_url + "api/orders", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "Idempotency-Key": order_id})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def get_order(base_url: str, order_id: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{base_url}api/orders/{order_id}", timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def order_for(run_id: str, n: int) -> dict:
    return {"customer_name": run_id, "product": f"item-{n:05d}", "quantity": 1 + n % 5, "amount": f"{1 + n % 90}.50"}


class Load:
    """``count`` orders on ``threads`` threads; ``started`` counts first attempts begun."""

    def __init__(self, base_url: str, count: int, threads: int) -> None:
        self.base_url, self.count, self.threads = base_url, count, threads
        self.run_id = f"fault-{uuid.uuid4().hex[:12]}"
        self.outcomes = [Outcome(str(uuid.uuid4()), f"item-{n:05d}") for n in range(count)]
        self.started = 0
        self._lock = threading.Lock()

    def _first(self, n: int) -> None:
        with self._lock:
            self.started += 1
        outcome = self.outcomes[n]
        outcome.first = outcome.final = post_order(self.base_url, order_for(self.run_id, n), outcome.order_id)
        outcome.attempts = 1

    def run(self) -> None:
        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(self._first, range(self.count)))

    def resend_unknown(self, deadline_seconds: float = 180) -> None:
        """Send every order without a definite answer again, same id, until it has one."""
        def resend(n: int) -> None:
            outcome = self.outcomes[n]
            deadline = time.monotonic() + deadline_seconds
            while outcome.final not in OK and outcome.final not in (400, 409, 422) and time.monotonic() < deadline:
                time.sleep(0.5 if outcome.attempts > 1 else 0)
                outcome.final = post_order(self.base_url, order_for(self.run_id, n), outcome.order_id)
                outcome.attempts += 1

        with ThreadPoolExecutor(self.threads) as pool:
            list(pool.map(resend, range(self.count)))


def time_to_recover(base_url: str, since: float, run_id: str, limit: float = 120, settle: float = 3.0,
                    slow: float = 2.0) -> float | None:
    """Seconds from ``since`` until orders placed through the app succeed again, and keep succeeding for
    ``settle`` seconds (one probe order, its id re-sent). 0 when no probe failed or was slow: nothing broke."""
    probe_id = str(uuid.uuid4())
    probe = {"customer_name": run_id + "-probe", "product": "probe", "quantity": 1, "amount": "1.00"}
    broke, recovered_at = False, None
    while time.monotonic() - since < limit:
        began = time.monotonic()
        ok = post_order(base_url, probe, probe_id, timeout=40) in OK
        ended = time.monotonic()
        broke = broke or not ok or ended - began > slow
        if not ok:
            recovered_at = None
        elif recovered_at is None:
            recovered_at = ended
        if recovered_at is not None and ended - recovered_at >= settle:
            return max(0.0, recovered_at - since) if broke else 0.0
        time.sleep(0.1)
    return None


def verify(load: Load, rows: list[tuple[str, str]], recover_seconds: float | None) -> Verdict:
    """``rows``: (order_id, product) of every stored order of the run (customer_name = run id)."""
    by_marker: dict[str, set[str]] = collections.defaultdict(set)
    for order_id, marker in rows:
        by_marker[marker].add(order_id)
    stored = {order_id for order_id, _ in rows}
    first_ok = {o.order_id for o in load.outcomes if o.first in OK}
    return Verdict(
        first_statuses=dict(collections.Counter(str(o.first) for o in load.outcomes)),
        final_statuses=dict(collections.Counter(str(o.final) for o in load.outcomes)),
        lost=[o.order_id for o in load.outcomes if o.final in OK and o.order_id not in stored],
        duplicated=[marker for marker, ids in by_marker.items() if len(ids) > 1],
        stored_without_2xx=[o.order_id for o in load.outcomes if o.order_id in stored and o.order_id not in first_ok],
        not_retrievable=[],
        recover_seconds=recover_seconds)


def check_retrievable(base_url: str, verdict: Verdict, seconds: float = 60) -> None:
    """Each order stored without a 2xx is found by its id (asked until the app gives a definite answer)."""
    def answer(order_id: str) -> int | None:
        deadline = time.monotonic() + seconds
        while True:
            status = get_order(base_url, order_id)
            if status in (200, 404) or time.monotonic() > deadline:
                return status
            time.sleep(0.5)

    verdict.not_retrievable = [i for i in verdict.stored_without_2xx if answer(i) != 200]


def under_fault(base_url: str, count: int, threads: int, inject: Callable[[], float],
                rows_of: Callable[[str], list[tuple[str, str]]]) -> tuple[Load, Verdict]:
    """Run the load, call ``inject`` once a quarter of it has started (it returns when the fault began, as
    ``time.monotonic()``), time the recovery, re-send what has no answer, and verify the database."""
    load = Load(base_url, count, threads)
    runner = threading.Thread(target=load.run)
    runner.start()
    while load.started < max(1, count // 4) and runner.is_alive():
        time.sleep(0.01)
    since = inject()
    recovered = time_to_recover(base_url, since, load.run_id)
    runner.join()
    stored_before_resend = rows_of(load.run_id)
    verdict = verify(load, stored_before_resend, recovered)
    check_retrievable(base_url, verdict)
    load.resend_unknown()
    final = verify(load, rows_of(load.run_id), recovered)
    final.stored_without_2xx, final.not_retrievable = verdict.stored_without_2xx, verdict.not_retrievable
    return load, final
