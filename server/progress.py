"""A live progress bar for long CLI work on a terminal; silent when stderr is piped."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class TerminalProgress:
    """Callable as `progress(done, total, correct)`; draws `[####....] 12/200 ok 5 ETA 3m10s`.

    On a terminal the bar is redrawn in place. Elsewhere (a log file, a job runner, `cmd 2> log &`) a plain
    line `label: 12/200 ok 5, 3m10s elapsed, ETA 49m` is written at most every `every` seconds and for the
    last item, so a long run in the background still says how far it got.

    Args:
        label: Shown before the bar.
        stream: Where to draw (stderr by default).
        every: Seconds between plain lines when the stream is not a terminal.
    """

    def __init__(self, label: str, stream: TextIO | None = None, every: float = 60.0):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.every = every
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._drawn = False
        self._last_line = float("-inf")

    def __call__(self, done: int, total: int, correct: int | None = None) -> None:
        if not self.enabled:
            self._line(done, total, correct)
            return
        with self._lock:
            elapsed = time.monotonic() - self.started
            eta = elapsed / done * (total - done) if done else 0.0
            width = 30
            filled = int(width * done / total) if total else width
            extra = f" ok {correct}" if correct is not None else ""
            line = (f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}{extra} "
                    f"{_clock(elapsed)} elapsed, ETA {_clock(eta)}")
            self.stream.write(line.ljust(100))
            self.stream.flush()
            self._drawn = True

    def _line(self, done: int, total: int, correct: int | None) -> None:
        with self._lock:
            now = time.monotonic()
            if now - self._last_line < self.every and done < total:
                return
            self._last_line = now
            elapsed = now - self.started
            eta = elapsed / done * (total - done) if done else 0.0
            extra = f" ok {correct}" if correct is not None else ""
            self.stream.write(f"{self.label}: {done}/{total}{extra}, {_clock(elapsed)} elapsed, ETA {_clock(eta)}\n")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
