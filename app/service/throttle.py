"""Slows down whoever guesses API tokens: past a number of failed sign-ins in a window,
from one client address or with one token prefix, further attempts are refused with
429 and Retry-After until the oldest of those failures leaves the window.

Per address stops one machine guessing; per token prefix stops many machines guessing
variations of one token. Counts are kept in memory, per process: each web server
throttles on its own (N processes allow up to N times the limit), and a restart
forgets. That is enough to make guessing a 256-bit token hopeless rather than merely
slow; a deployment that wants one shared count puts a rate limit in its proxy too.
A blocked address is refused even with a good token, or the guesser could keep going
between its own good requests; a success does not clear the count for the same reason.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

from app.service.errors import Unauthorized

FAILURES = 10  # failed attempts allowed per key in a window ...
WINDOW = 60.0  # ... of this many seconds
PREFIX = 8  # characters of a presented token that make its key
MAX_KEYS = 10_000  # keys remembered at most; the least recently failed are forgotten


class TooManyAttempts(Unauthorized):
    """429; an Unauthorized too, so whoever handles a failed sign-in handles this one."""

    code, status = "too_many_requests", 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


def keys_for(*, client: str | None, token: str) -> list[str]:
    """What a sign-in attempt counts against: its address, and its token's prefix."""
    keys = [f"token:{token[:PREFIX]}"] if token else []
    return [f"client:{client}", *keys] if client else keys


class AuthThrottle:
    """Failed attempts per key in a sliding window. `clock` is seconds, monotonic."""

    def __init__(
        self,
        *,
        failures: int = FAILURES,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.failures, self.window, self.clock, self.max_keys = failures, window, clock, max_keys
        self._failed: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failed.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failed[key]
        return times

    def check(self, keys: Sequence[str]) -> None:
        """TooManyAttempts if any key has used up its failures in the window."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.failures:
                wait = max(wait, times[-self.failures] + self.window - now)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise TooManyAttempts(
                f"token: too many failed attempts; try again in {seconds} s",
                retry_after=seconds,
            )

    def failed(self, keys: Sequence[str]) -> None:
        now = self.clock()
        for key in keys:
            times = self._recent(key, now)
            times.append(now)
            self._failed[key] = times
            self._failed.move_to_end(key)
        while len(self._failed) > self.max_keys:
            self._failed.popitem(last=False)
