"""Where one answer's time and tokens went, reported live (progress) and with the answer (cost).

`AnswerTrace` is handed down the question path. It times stages (routing, the expert, exact
tools), counts LM calls with their prompt tokens evaluated and served from the server's prompt
cache and the tokens generated (from DSPy's usage tracker, which LiteLLM fills from the
OpenAI-compatible `usage` of llama-server), and hears of every LM and tool call through a DSPy
callback. Each change of stage or call goes to an optional progress sink, so a client sees
work happening; a set cancel event stops the work at the next LM or tool call.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, Field

ProgressSink = Callable[[str], None]
TOKEN_PROGRESS_EVERY = 16  # streamed tokens between progress messages (about one a second on 2 cores)


class AnswerCancelled(BaseException):  # noqa: N818 - a BaseException, so DSPy's callback guards can't swallow it
    """The client cancelled the question; raised at the next LM or tool call."""


class StageTime(BaseModel):
    stage: str
    seconds: float


class AnswerCost(BaseModel):
    """What one answer cost: calls, tokens and seconds per stage."""

    lm_calls: int = Field(default=0, description="LM requests made (DSPy disk-cache hits excluded)")
    lm_cache_hits: int = Field(default=0, description="LM calls answered from DSPy's disk cache")
    prompt_tokens: int = Field(default=0, description="Prompt tokens sent to the LM")
    prompt_tokens_cached: int = Field(default=0, description="Of those, served from the server's prompt cache")
    prompt_tokens_evaluated: int = Field(default=0, description="Of those, evaluated anew")
    completion_tokens: int = Field(default=0, description="Tokens the LM generated")
    tool_calls: list[str] = Field(default_factory=list, description="Exact tools called, in order")
    stages: list[StageTime] = Field(default_factory=list, description="Seconds per stage, in order")
    total_seconds: float = 0.0


def _usage_numbers(entry: dict[str, Any]) -> tuple[int, int, int]:
    prompt = int(entry.get("prompt_tokens") or 0)
    completion = int(entry.get("completion_tokens") or 0)
    details = entry.get("prompt_tokens_details") or {}
    cached = int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0)
    return prompt, min(cached, prompt), completion


class AnswerTrace:
    """Collects the cost of one answer and forwards its progress.

    Args:
        progress: Called with a short message at each stage, LM call and tool call.
        cancel: When set, the next LM or tool call raises `AnswerCancelled`.

    Example:
        >>> trace = AnswerTrace(progress=print)
        >>> with trace.stage("routing"):
        ...     pass
        routing
        >>> trace.cost().stages[0].stage
        'routing'
    """

    def __init__(self, progress: ProgressSink | None = None, cancel: threading.Event | None = None):
        self.started = time.perf_counter()
        self.cancel = cancel or threading.Event()
        self.message = "started"
        self._progress = progress
        self._stages: list[StageTime] = []
        self._tools: list[str] = []
        self._lm_calls = 0
        self._lm_started = 0
        self._usage: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    # -- progress --------------------------------------------------------------------------------

    def update(self, message: str) -> None:
        """Records the current activity and forwards it to the progress sink."""
        self.message = message
        if self._progress is not None:
            with contextlib.suppress(Exception):  # a client gone mid-answer must not fail the answer
                self._progress(message)

    def check_cancelled(self) -> None:
        if self.cancel.is_set():
            raise AnswerCancelled("the question was cancelled by the client")

    @contextlib.contextmanager
    def stage(self, name: str, message: str | None = None) -> Iterator[None]:
        """Times a stage of the answer; `message` (default: the name) goes to progress."""
        self.check_cancelled()
        self.update(message or name)
        t = time.perf_counter()
        try:
            yield
        finally:
            with self._lock:
                self._stages.append(StageTime(stage=name, seconds=round(time.perf_counter() - t, 3)))

    # -- DSPy hooks ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def recording(self, stream: bool = True) -> Iterator[None]:
        """Runs DSPy work with this trace's callback and usage tracker attached.

        Args:
            stream: Let the LM engine stream the calls (tokens as progress, a cancel stops generation).
        """
        import dspy
        from dspy.utils.usage_tracker import UsageTracker

        tracker = UsageTracker()
        callbacks = [*dspy.settings.get("callbacks", []), _trace_callback(self)]
        try:
            # `sme_answer_trace` tells the LM engine (experts/lm.py) to stream: tokens become progress, and a
            # cancel closes the stream so the server stops generating.
            with dspy.context(callbacks=callbacks, usage_tracker=tracker, sme_answer_trace=self if stream else None):
                yield
        finally:
            with self._lock:
                for entries in tracker.usage_data.values():
                    self._usage.extend(entries)

    def _lm_start(self) -> None:
        self.check_cancelled()
        with self._lock:
            self._lm_started += 1
            n = self._lm_started
        self.update(f"{self.message.split(' | ')[0]} | model call {n}")

    def lm_tokens(self, chunks: int, text: str) -> None:
        """Reports a streaming model call's progress: every `TOKEN_PROGRESS_EVERY` chunks, the text's tail."""
        if chunks % TOKEN_PROGRESS_EVERY:
            return
        tail = " ".join(text.split())[-60:]
        self.update(f"{self.message.split(' | ')[0]} | model call {self._lm_started}: {chunks} tokens … {tail}")

    def _tool_start(self, name: str) -> None:
        self.check_cancelled()
        with self._lock:
            self._tools.append(name)
        self.update(f"{self.message.split(' | ')[0]} | tool {name}")

    def add_tool(self, name: str) -> None:
        """Records an exact tool called outside DSPy (the exact-math path)."""
        with self._lock:
            self._tools.append(name)

    # -- result ----------------------------------------------------------------------------------

    def cost(self) -> AnswerCost:
        with self._lock:
            prompt = cached = completion = 0
            for entry in self._usage:
                p, c, g = _usage_numbers(entry)
                prompt, cached, completion = prompt + p, cached + c, completion + g
            calls = len(self._usage)
            return AnswerCost(
                lm_calls=calls, lm_cache_hits=max(0, self._lm_started - calls), prompt_tokens=prompt,
                prompt_tokens_cached=cached, prompt_tokens_evaluated=prompt - cached, completion_tokens=completion,
                tool_calls=list(self._tools), stages=list(self._stages),
                total_seconds=round(time.perf_counter() - self.started, 3),
            )


_callback_class: type | None = None


def _trace_callback(trace: AnswerTrace) -> Any:
    """A DSPy callback bound to `trace` (the class is built on first use: DSPy loads lazily)."""
    global _callback_class
    if _callback_class is None:
        from dspy.utils.callback import BaseCallback

        class TraceCallback(BaseCallback):
            def __init__(self, trace: AnswerTrace):
                self.trace = trace

            def on_lm_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
                self.trace._lm_start()

            def on_tool_start(self, call_id: str, instance: Any, inputs: dict[str, Any]) -> None:
                name = getattr(instance, "name", "tool")
                if name != "finish":
                    self.trace._tool_start(name)

        _callback_class = TraceCallback
    return _callback_class(trace)
