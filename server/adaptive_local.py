"""Threads chosen by the machine's load: two supervised llama-servers, each call sent to the one that suits it.

On a machine with few cores no single thread count is best: bench/server_settings.py on 2 cores measured
`-t 2` at 1.7x the decode speed of `-t 1 -tb 2` while the machine was idle, and at about 0.6x as soon as
another process kept one core busy (its threads wait for each other at every token, so one preempted thread
stalls them all). Restarting llama-server with other threads would throw its prompt cache away, so both
layouts run side by side on the same model file: `all-cores` uses every core, `spare-core` leaves one to the
neighbours for generation and uses them all for reading prompts. The file is mapped once by the kernel; with
weight repacking each process holds its own repacked copy, about 1 GB for the default model (plain weights,
when setup timed them faster, are shared). Each LM chain run (the router's or an expert's calls for one
question) goes to the layout that the CPU time of *other* processes over the last seconds calls for
(server/cpu_load.py), with hysteresis, so a short spike does not flip it back and forth. Each server keeps
its own prompt cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

from sme_mcp.config.settings import LocalServerSettings
from sme_mcp.experts.lm import BackendUnavailable
from sme_mcp.server.cpu_load import NeighbourLoad
from sme_mcp.server.local_lm import LocalServer, batch_threads

log = logging.getLogger(__name__)

ALL_CORES = "all-cores"
SPARE_CORE = "spare-core"


def layouts(settings: LocalServerSettings, cpus: int) -> dict[str, LocalServerSettings]:
    """The two launch settings: every core for generation, and one core left free for generation.

    Args:
        settings: The local server's settings (model, context, flags); their threads are replaced.
        cpus: Cores of the machine.

    Example:
        >>> {name: (s.threads, s.threads_batch) for name, s in layouts(LocalServerSettings(), 2).items()}
        {'all-cores': (2, None), 'spare-core': (1, 2)}
    """
    return {
        ALL_CORES: settings.model_copy(update={"threads": cpus, "threads_batch": None}),
        SPARE_CORE: settings.model_copy(update={"threads": max(1, cpus - 1), "threads_batch": cpus}),
    }


def next_layout(current: str, neighbour_cores: float | None, busy_at: float) -> str:
    """The layout for the next call, given the cores other processes used lately.

    Switches to `spare-core` once the neighbours use `busy_at` cores or more, and back to `all-cores` only
    once they use at most half of that, so a load hovering at the threshold does not flip it at every call.
    Unknown load (no sample yet) keeps the current layout.

    Example:
        >>> next_layout("all-cores", 1.0, 0.5), next_layout("spare-core", 0.4, 0.5), next_layout("spare-core", 0.1, 0.5)
        ('spare-core', 'spare-core', 'all-cores')
    """
    if neighbour_cores is None:
        return current
    if current == ALL_CORES and neighbour_cores >= busy_at:
        return SPARE_CORE
    if current == SPARE_CORE and neighbour_cores <= busy_at / 2:
        return ALL_CORES
    return current


def _flags(settings: LocalServerSettings) -> str:
    tb = batch_threads(settings)
    return f"-t {settings.threads}" + (f" -tb {tb}" if tb is not None else "")


class AdaptiveLocal:
    """Two `LocalServer`s on one model, `all-cores` and `spare-core`; calls go to the one the load calls for.

    Args:
        settings: Launch settings of the local server (its threads are replaced per layout).
        cache_dir: Where the embedded model is assembled.
        log_dir: `llama-server.log` (all-cores) and `llama-server-spare-core.log` are kept here.
        cpus: Cores of the machine; default `os.cpu_count()`.
        load: The neighbour-load sampler; default one over the last 3 s.

    Example:
        >>> local = AdaptiveLocal(settings.local, cache_dir, log_dir)
        >>> local.start(); local.ready_deployments(wait=300)
        [('local:all-cores', 'http://127.0.0.1:40123/v1')]
    """

    def __init__(self, settings: LocalServerSettings, cache_dir: Path, log_dir: Path, cpus: int | None = None,
                 load: NeighbourLoad | None = None):
        self.settings = settings
        self.load = load or NeighbourLoad()
        self.layout = ALL_CORES
        self.switches = 0
        self._lock = threading.Lock()
        self.servers: dict[str, LocalServer] = {}
        for name, layout in layouts(settings, cpus or os.cpu_count() or 2).items():
            server = LocalServer(layout, cache_dir, log_dir)
            if name != ALL_CORES:
                server.log_path = log_dir / f"llama-server-{name}.log"
            self.servers[name] = server

    def __getattr__(self, name: str) -> Any:
        # What both servers share (binary, model path, n_ctx_train, warnings, log path) is read from all-cores,
        # as `doctor` and the receipts read it from whatever `make_local` returned.
        if name == "servers":
            raise AttributeError(name)
        return getattr(self.servers[ALL_CORES], name)

    def start(self) -> None:
        self.load.start()
        for server in self.servers.values():
            server.start()

    def stop(self, grace: float = 10.0) -> None:
        for server in self.servers.values():
            server.stop(grace)
        self.load.stop()

    def choose(self) -> str:
        """The layout for the call about to be made (switching it when the neighbours' load says so)."""
        cores = self.load.cores()
        with self._lock:
            chosen = next_layout(self.layout, cores, self.settings.adaptive_busy_cores)
            if chosen != self.layout:
                self.switches += 1
                log.info("llama-server layout %s -> %s: other processes used %.2f cores over the last %g s",
                         self.layout, chosen, cores, self.load.window)
                self.layout = chosen
            return chosen

    def ready_deployments(self, wait: float = 0.0) -> list[tuple[str, str]]:
        """[(deployment name, URL)] of the server the next call should use, waiting up to `wait` s for one.

        The chosen layout's server is preferred; while it is loading or restarting, the other one serves.

        Raises:
            BackendUnavailable: Neither server is ready in time; the message gives each one's state.
        """
        chosen = self.choose()
        order = [chosen, *(name for name in self.servers if name != chosen)]
        deadline = time.monotonic() + wait
        while True:
            for name in order:
                try:
                    return [(f"local:{name}", self.servers[name].base_url(0.0))]
                except BackendUnavailable:
                    continue
            left = deadline - time.monotonic()
            if left <= 0 or all(s.state in ("disabled", "failed") for s in self.servers.values()):
                break
            time.sleep(min(left, 0.25))
        states = "; ".join(f"{name}: {s.state}: {s.reason}" for name, s in self.servers.items())
        raise BackendUnavailable(f"no local llama-server is ready ({states})")

    def base_url(self, wait: float = 0.0) -> str:
        """The all-cores server's URL once it is ready, waiting up to `wait` s (what `doctor` and set-up checks
        read, with its model details); the spare-core server's when all-cores cannot serve.

        Raises:
            BackendUnavailable: Neither server is ready; the message gives each one's state.
        """
        try:
            return self.servers[ALL_CORES].base_url(wait)
        except BackendUnavailable:
            return self.ready_deployments(0.0)[0][1]

    @property
    def model_name(self) -> str:
        return self.servers[ALL_CORES].model_name

    @property
    def pid(self) -> int | None:
        return self.servers[ALL_CORES].pid

    @property
    def state(self) -> str:
        states = {s.state for s in self.servers.values()}
        return "ready" if "ready" in states else self.servers[ALL_CORES].state

    def model_info(self) -> dict[str, Any]:
        info = self.servers[ALL_CORES].model_info()
        info.update(threads="adaptive", threads_batch=None,
                    layouts={name: _flags(s.settings) for name, s in self.servers.items()},
                    adaptive_busy_cores=self.settings.adaptive_busy_cores)
        return info

    def status(self) -> dict[str, Any]:
        cores = self.load.cores()
        servers = {name: {**s.status(), "flags": _flags(s.settings)} for name, s in self.servers.items()}
        ready = [name for name, s in servers.items() if s["state"] == "ready"]
        return {"state": self.state, "layout": self.layout, "port": self.servers[self.layout].port,
                "switches": self.switches,
                "neighbour_cores": None if cores is None else round(cores, 2), "servers": servers,
                "reason": f"threads follow the load: {len(ready)} of 2 layouts ready ({', '.join(ready) or 'none'}); "
                          f"calls go to {self.layout}"}
