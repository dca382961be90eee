"""Connection hygiene for the HTTP transports: request timeout, connection cap, and floods logged once.

uvicorn 0.54's h11 protocol has a keep-alive timeout but no header (or body) timeout: a connection
that sends half a request stays open for ever, and enough of them exhaust the process's file
descriptors, after which asyncio's accept loop logs a traceback for every retry (thousands per
second). `hardened_protocol` closes a connection that has not sent a complete request within the
timeout and refuses connections past a cap below the descriptor limit; `RateLimitedLog` lets the
same log message through once per interval with a count of what it held back.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import threading
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

# Descriptors kept free for everything but client connections: SymPy worker sockets, the document index,
# log files, the local LM's pipes.
FD_RESERVE_FRACTION = 0.5
_INCOMPLETE = (h11.IDLE, h11.SEND_BODY)


def connection_cap(configured: int) -> int:
    """`configured`, but at most half the soft RLIMIT_NOFILE (so accept() never runs out of descriptors)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft <= 0:
        return configured
    return max(1, min(configured, int(soft * FD_RESERVE_FRACTION)))


class _Counter:
    """Counts events and logs them at most once per `interval` seconds."""

    def __init__(self, message: str, interval: float = 10.0):
        self.message, self.interval = message, interval
        self.pending = 0
        self.last = 0.0
        self.lock = threading.Lock()

    def __call__(self, *args: Any) -> None:
        with self.lock:
            self.pending += 1
            now = time.monotonic()
            if now - self.last < self.interval:
                return
            count, self.pending, self.last = self.pending, 0, now
        log.warning(self.message + " (%d since the last such message)", *args, count)


def hardened_protocol(request_timeout: float, max_connections: int) -> type[H11Protocol]:
    """An h11 protocol class that closes slow or surplus connections (pass it as uvicorn's `http=`)."""
    timed_out = _Counter(f"closed connections that sent no complete request within {request_timeout:g} s")
    refused = _Counter(f"closed connections beyond the limit of {max_connections} open connections")

    class HardenedH11Protocol(H11Protocol):
        _request_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                refused()
                transport.abort()  # connection_lost() follows and forgets it
                return
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._request_timer = self.loop.call_later(request_timeout, self._request_timed_out)

        def _disarm(self) -> None:
            if self._request_timer is not None:
                self._request_timer.cancel()
                self._request_timer = None

        def _request_timed_out(self) -> None:
            self._request_timer = None
            if self.transport.is_closing() or self.conn.their_state not in _INCOMPLETE:
                return  # the request is in: the response may take as long as it takes (SSE streams do)
            timed_out()
            self.transport.abort()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            # The deadline runs from the connection's start (or the last response), not from the last byte:
            # a client trickling one byte at a time does not extend it.
            if self.conn.their_state not in _INCOMPLETE:
                self._disarm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._arm()  # the next request on this keep-alive connection gets the same deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HardenedH11Protocol


class RateLimitedLog(logging.Filter):
    """Lets each distinct message (logger and format string) through at most once per `interval` seconds.

    The next one let through says how many were held back; tracebacks of held-back records are dropped
    with them. Added to the `asyncio` and `uvicorn.error` loggers, where a descriptor shortage or a
    flood of bad requests would otherwise log without end.
    """

    def __init__(self, interval: float = 60.0):
        super().__init__()
        self.interval = interval
        self._last: dict[tuple[str, str], float] = {}
        self._held: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
            if len(self._last) > 1000:  # distinct messages are few; never grow without bound
                self._last = {k: t for k, t in self._last.items() if now - t < self.interval}
        if held:
            record.msg = f"{record.msg} [{held} more like this in the last {self.interval:g} s were not logged]"
        return True


def install_log_limits(interval: float = 60.0) -> RateLimitedLog:
    """Adds one `RateLimitedLog` to the loggers that floods reach; returns it."""
    limit = RateLimitedLog(interval)
    for name in ("asyncio", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RateLimitedLog) for f in logger.filters):
            logger.addFilter(limit)
    return limit
