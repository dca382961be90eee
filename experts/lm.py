"""LM backends per role, tried in order through LiteLLM: local llama-server first, then the fallbacks.

A call is run whole on one backend (`LMChain.run`). If that backend is unreachable or fails at
the transport or provider level, the call is run again on the next one, so every answer names
exactly one backend that produced it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sme_mcp.experts.settings import LOCAL, LMSpec, Role

log = logging.getLogger(__name__)
T = TypeVar("T")

LOCAL_LITELLM_MODEL = "openai/local"


class BackendUnavailable(RuntimeError):
    """One backend cannot be used right now (not running, no API key, ...)."""


class NoBackendError(RuntimeError):
    """No backend in a role's chain could serve the call; the message lists why and what to set."""


class LocalBackend(Protocol):
    """What the experts need from the supervised llama-server (see `server.local_lm.LocalServer`)."""

    model_name: str

    def base_url(self, wait: float = 0.0) -> str: ...


@dataclass(frozen=True)
class Served:
    """Which backend produced a result."""

    label: str
    model: str


_registered = False


def _register_local_model() -> None:
    # Marks the local model schema-capable so DSPy's JSONAdapter sends grammar-enforced json_schema.
    global _registered
    if _registered:
        return
    _registered = True
    import litellm

    litellm.register_model({
        LOCAL_LITELLM_MODEL: {
            "litellm_provider": "openai", "mode": "chat", "supports_response_schema": True,
            "max_tokens": 8192, "max_input_tokens": 32768, "max_output_tokens": 8192,
            "input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
            # Naming the cache prices too keeps LiteLLM from warning on every start.
            "cache_creation_input_token_cost": 0.0, "cache_read_input_token_cost": 0.0,
        }
    })


def is_backend_failure(exc: BaseException) -> bool:
    """True for failures of the backend itself (connection, server, auth, rate limit, timeout)."""
    from dspy.utils.exceptions import (
        LMAuthError,
        LMBillingError,
        LMNotConfiguredError,
        LMRateLimitError,
        LMServerError,
        LMTimeoutError,
        LMTransportError,
        LMUnexpectedError,
    )

    kinds = (
        LMTransportError, LMServerError, LMTimeoutError, LMAuthError, LMBillingError, LMRateLimitError,
        LMNotConfiguredError, LMUnexpectedError, ConnectionError, BackendUnavailable,
    )
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kinds):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


class LMChain:
    """The ordered backends of one role.

    Args:
        role: Role name, used in messages.
        specs: Backends in the order they are tried.
        local: The supervised local server, or None when there is none.
        local_wait: Seconds to wait for the local server to finish loading before falling back.
        cache: Let DSPy answer repeated identical calls from its cache.
    """

    def __init__(self, role: Role, specs: list[LMSpec], local: LocalBackend | None, local_wait: float = 120.0,
                 cache: bool = True):
        self.role, self.specs, self.local, self.local_wait = role, specs, local, local_wait
        self.cache = cache
        self._lms: dict[tuple[str, str | None, str | None, float, int], Any] = {}
        self._lock = threading.Lock()

    def _resolve(self, spec: LMSpec) -> tuple[str, str | None, str | None, str]:
        """Returns (litellm model, api_base, api_key, served model name) or raises BackendUnavailable."""
        if spec.model == LOCAL:
            if self.local is None:
                raise BackendUnavailable("no local server (disabled by SME_LOCAL__ENABLED=false or --no-local)")
            return LOCAL_LITELLM_MODEL, self.local.base_url(self.local_wait), "local", self.local.model_name
        key = None
        if spec.api_key_env:
            key = os.environ.get(spec.api_key_env)
            if not key:
                raise BackendUnavailable(f"{spec.api_key_env} is not set")
        return spec.model, spec.api_base, key, spec.model

    def lm(self, spec: LMSpec) -> tuple[Any, Served]:
        """The `dspy.LM` for one spec (cached per endpoint), or raises BackendUnavailable."""
        import dspy

        model, api_base, key, served = self._resolve(spec)
        cache_key = (model, api_base, key, spec.temperature, spec.max_tokens)
        with self._lock:
            lm = self._lms.get(cache_key)
            if lm is None:
                if model == LOCAL_LITELLM_MODEL:
                    _register_local_model()
                lm = dspy.LM(
                    model, api_base=api_base, api_key=key, temperature=spec.temperature,
                    max_tokens=spec.max_tokens, engine="litellm", num_retries=1 if spec.model == LOCAL else 3,
                    cache=self.cache,
                )
                self._lms[cache_key] = lm
        return lm, Served(label="local" if spec.model == LOCAL else spec.label, model=served)

    def first_available(self) -> tuple[Any, Served]:
        """The first backend that resolves, without calling it (for optimizers that need one LM)."""
        reasons = []
        for spec in self.specs:
            try:
                return self.lm(spec)
            except BackendUnavailable as exc:
                reasons.append(f"{spec.label}: {exc}")
        raise self._none_left(reasons)

    def run(self, call: Callable[[], T]) -> tuple[T, Served]:
        """Runs `call` under each backend in turn until one succeeds.

        Raises:
            NoBackendError: Every backend was unavailable or failed at the backend level.
            Exception: Any non-backend error from `call` (bad output, a bug) propagates at once.
        """
        import dspy

        reasons: list[str] = []
        for spec in self.specs:
            for attempt in range(2 if spec.model == LOCAL else 1):
                try:
                    lm, served = self.lm(spec)
                except BackendUnavailable as exc:
                    reasons.append(f"{spec.label}: {exc}")
                    break
                try:
                    with dspy.context(lm=lm):
                        return call(), served
                except Exception as exc:
                    if not is_backend_failure(exc):
                        raise
                    log.warning("role %s: backend %s failed: %s", self.role, served.label, exc)
                    reasons.append(f"{served.label}: {type(exc).__name__}: {str(exc)[:200]}")
                    # A crashed local server is restarted by its supervisor; the retry waits for it.
                    if attempt == 0 and spec.model == LOCAL:
                        continue
                    break
        raise self._none_left(reasons)

    def _none_left(self, reasons: list[str]) -> NoBackendError:
        return NoBackendError(
            f"No LM backend could answer for the {self.role} expert. Tried: {'; '.join(reasons) or 'nothing'}. "
            "Fix: run `sme-mcp setup` (scripts/setup.sh in a checkout) to install the embedded local model "
            "(or set SME_LOCAL__MODEL_PATH "
            "to a GGUF file), or set an API key such as OPENAI_API_KEY for the cloud fallback, "
            f"or configure SME_{self.role.upper()}__CHAIN. `sme-mcp doctor` shows what is reachable."
        )
