"""LM backends per role behind a LiteLLM `Router`: local llama-server replicas first, then the fallbacks.

Each backend of a role's chain is one Router model group; the local one has a deployment per
supervised llama-server replica, and LiteLLM balances calls across them (its routing strategy),
retries, cools a failing deployment down and falls back to the next group in chain order. DSPy
reaches the Router through a DSPy engine (`RouterEngine`), so caching, usage tracking and the
adapters work as with any `dspy.LM`. Every call records the deployment that served it, and each
answer names it (`Served`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sme_mcp.config.settings import LOCAL, ROLES, LMRouterSettings, LMSpec, Role
from sme_mcp.tools.errors import SmeError

log = logging.getLogger(__name__)
T = TypeVar("T")

LOCAL_LITELLM_MODEL = "openai/local"
# The chat adapter asks the model to end with this marker, and parses without it. The server can only match a stop
# string in tokens already generated, so this saves the end-of-text token after the marker, not the marker: one token
# (about 80 ms here) per call, measured by bench/user_questions.py at ee84138 (every call's count 1 lower).
LOCAL_STOP = ["[[ ## completed ## ]]"]
CRASH_NOTICE_SECONDS = 0.6  # the supervisor polls its child every 0.5 s (server/local_lm.py)


class BackendUnavailable(RuntimeError):
    """One backend cannot be used right now (not running, no API key, ...)."""


class NoBackendError(SmeError, RuntimeError):
    """No backend in a role's chain could serve the call; the message lists why and what to set."""


class LocalBackend(Protocol):
    """What the experts need from the supervised llama-server (see `server.local_lm.LocalServer`)."""

    model_name: str

    def base_url(self, wait: float = 0.0) -> str: ...


@dataclass(frozen=True)
class Served:
    """Which backend produced a result.

    Attributes:
        label: The chain entry: ``local`` or the spec's label (``openai/gpt-4o-mini``).
        model: The model behind it (the GGUF file name for the local server).
        deployment: The Router deployment that served the last call, e.g. ``local#2
            http://127.0.0.1:40123/v1`` (one replica of the local server).
    """

    label: str
    model: str
    deployment: str | None = None


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


@dataclass(frozen=True)
class _Deployment:
    id: str
    group: str
    served: Served
    litellm_params: dict[str, Any]


class _Calls(threading.local):
    """The deployments that served the calls made on this thread since `reset`."""

    def __init__(self) -> None:
        self.ids: list[str] = []


@functools.cache
def _router_engine_class() -> type:
    # Built on first use: DSPy (and its LiteLLM engine) load lazily.
    from dspy.clients.engines.litellm_engine import LiteLLMEngine
    from dspy.clients.engines.litellm_errors import litellm_errors

    class RouterEngine(LiteLLMEngine):
        """A DSPy engine that sends each request to a LiteLLM Router model group.

        DSPy keeps its own cache, history, usage tracking and adapters; the Router owns
        deployments, balancing, retries, cooldowns and fallbacks.
        """

        complete_legacy = None  # DSPy then sends canonical requests to `complete`, which reach the Router

        def __init__(self, router: Any, group: str, calls: _Calls) -> None:
            super().__init__()
            self.router, self.group, self.calls = router, group, calls

        def complete(self, request: Any) -> Any:
            import dspy

            data = self._arguments(request)
            data.pop("num_retries", None)  # the Router's retry policy applies, not a per-call one
            data.pop("cache", None)
            data["model"] = self.group
            trace = dspy.settings.get("sme_answer_trace")
            with litellm_errors(model=request.model):
                raw = self._streamed(data, trace) if trace is not None else self.router.completion(**data)
            model_id = (getattr(raw, "_hidden_params", None) or {}).get("model_id")
            if model_id:
                self.calls.ids.append(str(model_id))
            return self._response(raw, request)

        def _streamed(self, data: dict[str, Any], trace: Any) -> Any:
            """The call streamed, for an answer someone waits for: tokens go to its progress as they come,
            and a cancelled answer closes the stream, which makes llama-server stop generating at once."""
            import litellm

            source = self.router.completion(**data, stream=True, stream_options={"include_usage": True})
            hidden = dict(getattr(source, "_hidden_params", None) or {})
            chunks: list[Any] = []
            text = ""
            try:
                for chunk in source:
                    chunks.append(chunk)
                    delta = chunk.choices[0].delta.content if chunk.choices else None
                    if delta:
                        text += delta
                        trace.lm_tokens(len(chunks), text)
                    trace.check_cancelled()
            finally:
                if trace.cancel.is_set():
                    _close_stream(source)
            raw = litellm.stream_chunk_builder(chunks, messages=data.get("messages"))
            if raw is not None:
                raw._hidden_params = {**hidden, **(getattr(raw, "_hidden_params", None) or {})}
            return raw

        def stream(self, request: Any) -> Any:
            raise NotImplementedError("streaming through the Router is not used")

    return RouterEngine


def _close_stream(source: Any) -> None:
    """Closes the HTTP response under a Router stream, so the server notices the client left and stops.

    The Router wraps the provider's stream in a fallback generator; closing that generator alone leaves
    the response open (llama-server went on generating for 7 s in a test), while closing the provider's
    `openai.Stream` under it stopped the generation within 0.6 s. litellm is pinned, so its wrapper's
    layout is known; anything unexpected falls back to closing what is reachable.
    """
    streams = []
    frame = getattr(getattr(source, "_sync_generator", None), "gi_frame", None)
    inner = frame.f_locals.get("model_response") if frame is not None else None
    for holder in (inner, source):
        stream = getattr(holder, "completion_stream", None)
        if stream is not None:
            streams.append(stream)
    for stream in streams:
        close = getattr(stream, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):
                close()


class LMChain:
    """The ordered backends of one role, as LiteLLM Router model groups with fallbacks in chain order.

    Args:
        role: Role name, used in messages and deployment ids.
        specs: Backends in the order they are tried.
        local: The supervised local server (or replicas: anything with `base_urls`), or None.
        local_wait: Seconds to wait for the local server to finish loading before falling back.
        cache: Let DSPy answer repeated identical calls from its cache.
        router_settings: LiteLLM Router options (routing strategy, retries, cooldowns); defaults if None.

    Example:
        >>> chain = LMChain("math", settings.math.chain, local)
        >>> pred, served = chain.run(lambda: module(question="What is 2+2?"))
        >>> served.deployment
        'local#1 http://127.0.0.1:40123/v1'
    """

    def __init__(self, role: Role, specs: list[LMSpec], local: LocalBackend | None, local_wait: float = 120.0,
                 cache: bool = True, router_settings: LMRouterSettings | None = None):
        self.role, self.specs, self.local, self.local_wait = role, specs, local, local_wait
        self.cache = cache
        self.router_settings = router_settings or LMRouterSettings()
        self._built: tuple[tuple[Any, ...], Any, dict[str, _Deployment], list[str]] | None = None
        self._calls = _Calls()
        self._lock = threading.Lock()

    # -- deployments -----------------------------------------------------------------------------

    def _local_urls(self, wait: float) -> list[tuple[str, str]]:
        """(deployment name, URL) of each local server to use now: `local#N` for replica N (the numbers stay
        with the replicas), or the name the backend gives (the adaptive pair's `local:all-cores`)."""
        if self.local is None:
            raise BackendUnavailable("no local server (disabled by SME_LOCAL__ENABLED=false or --no-local)")
        named = getattr(self.local, "ready_deployments", None)
        if callable(named):
            return list(named(wait))
        ready = getattr(self.local, "ready_replicas", None)
        if callable(ready):
            numbered = list(ready(wait))
        else:
            base_urls = getattr(self.local, "base_urls", None)
            urls = list(base_urls(wait)) if callable(base_urls) else [self.local.base_url(wait)]
            numbered = list(enumerate(urls, start=1))
        return [(f"local#{number}", url) for number, url in numbered]

    def _deployments(self, wait: float) -> tuple[list[_Deployment], list[str]]:
        """Every usable deployment in chain order, and why the other chain entries are not usable."""
        deployments: list[_Deployment] = []
        reasons: list[str] = []
        for i, spec in enumerate(self.specs):
            group = f"{self.role}-{i}"
            params = {"temperature": spec.temperature, "max_tokens": spec.max_tokens}
            if spec.model == LOCAL:
                try:
                    urls = self._local_urls(wait)
                except BackendUnavailable as exc:
                    reasons.append(f"local: {exc}")
                    continue
                _register_local_model()
                for name, url in urls:
                    deployments.append(_Deployment(
                        id=f"{group}:{name}:{url}", group=group,
                        served=Served("local", self.local.model_name, f"{name} {url}"),  # type: ignore[union-attr]
                        litellm_params={"model": LOCAL_LITELLM_MODEL, "api_base": url, "api_key": "local",
                                        "stop": LOCAL_STOP, **params},
                    ))
                continue
            key = None
            if spec.api_key_env:
                key = os.environ.get(spec.api_key_env)
                if not key:
                    reasons.append(f"{spec.label}: {spec.api_key_env} is not set")
                    continue
            bases: list[str | None] = [spec.api_base, *spec.more_api_bases] if spec.api_base else [None]
            for base in bases:
                litellm_params = {"model": spec.model, **params}
                if base:
                    litellm_params["api_base"] = base
                if key or base:  # a self-hosted OpenAI-compatible server takes any key
                    litellm_params["api_key"] = key or "none"
                where = f"{spec.model}@{base}" if base else spec.label
                deployments.append(_Deployment(id=f"{group}:{where}", group=group,
                                               served=Served(spec.label, spec.model, where),
                                               litellm_params=litellm_params))
        return deployments, reasons

    def _router_lm(self, wait: float) -> tuple[Any, dict[str, _Deployment], list[str]]:
        """The `dspy.LM` over a Router of the current deployments, rebuilt when they change.

        A restarted local server listens on a new port, and replicas come and go: the Router is
        rebuilt whenever the set of deployments differs from the one it was built for.
        """
        import dspy
        import litellm

        deployments, reasons = self._deployments(wait)
        if not deployments:
            raise self._none_left(reasons)
        key = tuple((d.id, tuple(sorted((k, str(v)) for k, v in d.litellm_params.items()))) for d in deployments)
        with self._lock:
            if self._built is not None and self._built[0] == key:
                return self._built[1], self._built[2], reasons
            groups = list(dict.fromkeys(d.group for d in deployments))
            rs = self.router_settings
            router = litellm.Router(
                model_list=[{"model_name": d.group, "litellm_params": d.litellm_params, "model_info": {"id": d.id}}
                            for d in deployments],
                fallbacks=[{groups[0]: groups[1:]}] if len(groups) > 1 else [],
                routing_strategy=rs.routing_strategy, num_retries=rs.num_retries, allowed_fails=rs.allowed_fails,
                cooldown_time=rs.cooldown_time, timeout=rs.timeout, retry_after=0,
                # Cooling down a group's only deployment leaves nothing to call, and hides why it failed.
                disable_cooldowns=all(sum(d.group == g for d in deployments) == 1 for g in groups),
            )
            first = deployments[0]
            lm = dspy.LM(
                str(first.litellm_params["model"]), engine=_router_engine_class()(router, groups[0], self._calls),
                temperature=first.litellm_params["temperature"], max_tokens=first.litellm_params["max_tokens"],
                cache=self.cache, num_retries=0,  # retries are the Router's
            )
            by_id = {d.id: d for d in deployments}
            self._built = (key, lm, by_id, reasons)
            return lm, by_id, reasons

    # -- calls -----------------------------------------------------------------------------------

    def first_available(self) -> tuple[Any, Served]:
        """The Router LM over every usable backend (for optimizers that need one LM), without calling it."""
        lm, by_id, _ = self._router_lm(self.local_wait)
        return lm, next(iter(by_id.values())).served

    def run(self, call: Callable[[], T]) -> tuple[T, Served]:
        """Runs `call` with the role's Router LM; the Router balances, retries and falls back per request.

        When every deployment failed at the backend level and the chain has the local server, the
        call runs once more after the supervisor has restarted it (on a new port, so a new Router).

        Raises:
            NoBackendError: No backend is usable, or every one failed at the backend level.
            Exception: Any non-backend error from `call` (bad output, a bug) propagates at once.
        """
        from sme_mcp.experts.adapter import lm_context

        failures: list[str] = []
        has_local = any(spec.model == LOCAL for spec in self.specs) and self.local is not None
        for attempt in range(2 if has_local else 1):
            try:
                lm, by_id, reasons = self._router_lm(self.local_wait)
            except NoBackendError:
                if failures:
                    break
                raise
            self._calls.ids = []
            try:
                with lm_context(lm):
                    result = call()
            except Exception as exc:
                if not is_backend_failure(exc):
                    raise
                log.warning("role %s: every deployment failed: %s", self.role, exc)
                failures.append(f"{type(exc).__name__}: {str(exc)[:300]}")
                if attempt == 0 and has_local:
                    # A crashed local server is restarted by its supervisor, which notices the exit within
                    # half a second; the retry waits that long, so it is not handed the dead replica again.
                    time.sleep(CRASH_NOTICE_SECONDS)
                    continue
                break
            served_ids = [i for i in self._calls.ids if i in by_id]
            chosen = by_id[served_ids[-1]] if served_ids else next(iter(by_id.values()))
            return result, chosen.served
        _, reasons = self._deployments(0.0)
        raise self._none_left([*reasons, *failures])

    def take_deployment(self) -> str | None:
        """The deployment of this thread's latest call through the Router since the last take (None: no call).

        Forgets the calls, so the next take says only what served the calls made after this one.
        """
        built, ids = self._built, self._calls.ids
        self._calls.ids = []
        if built is None or not ids:
            return None
        deployment = built[2].get(ids[-1])
        return deployment.served.deployment if deployment else None

    def _none_left(self, reasons: list[str]) -> NoBackendError:
        return NoBackendError(
            f"No LM backend could answer for the {self.role} expert. Tried: {'; '.join(reasons) or 'nothing'}. "
            "Fix: run `sme-mcp setup` (scripts/setup.sh in a checkout) to install the embedded local model "
            "(or set SME_LOCAL__MODEL_PATH "
            "to a GGUF file), or set an API key such as OPENAI_API_KEY for the cloud fallback, "
            + (f"or configure SME_{self.role.upper()}__CHAIN. " if self.role in ROLES else
               "or set the chain in the expert's declaration (or SME_GENERAL__CHAIN, which it uses by default). ")
            + "`sme-mcp doctor` shows what is reachable."
        )
