"""Requests and tokens per minute: the limits the online backend holds over a whole stage."""

from __future__ import annotations

import asyncio
import time


class RateLimiter:
    """A token bucket refilled at `per_minute` units a minute, holding at most a minute's worth.

    It lives as long as the backend, across `run()` calls (chunks of a stream, several calls of
    one stage), so the limit holds over the whole stage; each run's event loop gets its lock.
    """

    def __init__(self, per_minute: float, clock=time.monotonic, sleep=asyncio.sleep):
        self.capacity = float(per_minute)
        self.level = float(per_minute)
        self._clock = clock
        self._sleep = sleep
        self.updated = clock()
        self._lock: asyncio.Lock | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def acquire(self, amount: float = 1.0) -> None:
        # more than a minute's budget at once: wait for a full bucket rather than forever
        amount = min(float(amount), self.capacity)
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # an asyncio.Lock belongs to one event loop
            self._lock, self._loop = asyncio.Lock(), loop
        async with self._lock:
            while True:
                now = self._clock()
                self.level = min(
                    self.capacity, self.level + (now - self.updated) * self.capacity / 60.0
                )
                self.updated = now
                if self.level >= amount:
                    self.level -= amount
                    return
                await self._sleep((amount - self.level) * 60.0 / self.capacity)
