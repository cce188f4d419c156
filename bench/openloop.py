"""An open-loop load generator: requests leave at fixed times whatever the gateway answers.

Why open loop. A closed-loop client (send, wait for the answer, send the next) slows down exactly when the server
does: while one request is stuck for 200 ms, the requests that should have left in those 200 ms are never sent,
so their waiting is never measured — *coordinated omission*. Its p99 then describes only the requests that happened
to find the gateway quick. Agencies' systems do not wait for each other: ten clerks press "send" when they press
it. So here request ``i`` is due at ``start + i / rate``; a pool of sender threads (each with its own keep-alive
connection) sends each request at its due time, and its latency is measured FROM THE DUE TIME to the end of the
answer. A request that could not even leave on time (every sender busy, or the client itself slow) is charged that
delay too. The latency from the actual send (what a closed-loop client would report) is given beside it, and how
many requests left late, so that a late client is visible rather than hidden. (The latency from the send is what
a client timing its own call reports; it still includes queueing inside the gateway, not the wait before it.)
"""

from __future__ import annotations

import dataclasses
import http.client
import math
import threading
import time
from collections.abc import Sequence

#: Sender threads: enough that at 50 req/s every request finds one free unless the gateway stalls for > 0.3 s.
SENDERS = 16
#: A request that leaves more than this after its due time counts as "late" (the client's own lag).
LATE_AFTER = 0.005


@dataclasses.dataclass(frozen=True)
class OpenLoopResult:
    rate: float
    seconds: float
    sent: int
    errors: int
    #: seconds from each request's due time to the end of its answer (coordinated omission accounted for)
    from_due: list[float]
    #: seconds from the actual send to the end of the answer (what a closed-loop client would measure)
    from_send: list[float]
    late: int
    #: seconds from the first due time to the last answer: n / span below ``rate`` means the gateway fell behind
    span: float


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0–1) by the nearest-rank method: a value that was actually observed."""
    ordered = sorted(values)
    return ordered[min(len(ordered), max(1, math.ceil(q * len(ordered)))) - 1]


def open_loop(port: int, bodies: Sequence[bytes], rate: float, path: str = "/soap") -> OpenLoopResult:
    """Send ``bodies`` (complete SOAP requests) to ``127.0.0.1:port`` at ``rate`` per second, open loop."""
    n = len(bodies)
    from_due = [0.0] * n
    from_send = [0.0] * n
    status = [0] * n
    lock = threading.Lock()
    next_index = iter(range(n))
    start = time.perf_counter() + 0.2
    last_done = [start]

    def sender() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                break
            due = start + i / rate
            wait = due - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            try:
                conn.request("POST", path, body=bodies[i], headers={"Content-Type": "text/xml; charset=utf-8"})
                resp = conn.getresponse()
                resp.read()
                status[i] = resp.status
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            done = time.perf_counter()
            from_due[i], from_send[i] = done - due, done - sent
            last_done[0] = max(last_done[0], done)
        conn.close()

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    late = sum(1 for due_lat, send_lat in zip(from_due, from_send, strict=True) if due_lat - send_lat > LATE_AFTER)
    return OpenLoopResult(
        rate=rate,
        seconds=n / rate,
        sent=n,
        errors=sum(1 for s in status if s != 200),
        from_due=from_due,
        from_send=from_send,
        late=late,
        span=last_done[0] - start,
    )
