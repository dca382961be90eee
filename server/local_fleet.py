"""Several supervised llama-server replicas (`SME_LOCAL__REPLICAS=N`), one deployment each in the Router.

Each replica is a `LocalServer` of its own: own port, own log (`logs/llama-server-<i>.log`),
restarted and stopped as a single server is. The machine's threads are split between them. The
experts' LiteLLM Router (experts/lm.py) spreads calls over every replica that is ready, so a
replica that dies or restarts costs retries on the others, not answers.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from sme_mcp.config.settings import LocalServerSettings
from sme_mcp.experts.lm import BackendUnavailable
from sme_mcp.server.local_lm import LocalServer


def replica_settings(settings: LocalServerSettings, replicas: int, cpus: int | None = None) -> LocalServerSettings:
    """One replica's launch settings: the machine's threads split evenly (at least one each)."""
    cpus = cpus or os.cpu_count() or 2
    threads = max(1, cpus // replicas)
    return settings.model_copy(update={"threads": threads, "threads_batch": threads, "replicas": 1})


class LocalFleet:
    """N `LocalServer` replicas behind one interface (what `LMChain` and the status tools use).

    Args:
        settings: Launch settings; `replicas` says how many servers start.
        cache_dir: Where the embedded model is assembled.
        log_dir: Each replica logs to `llama-server-<i>.log` here.

    Example:
        >>> fleet = LocalFleet(settings.local.model_copy(update={"replicas": 2}), cache_dir, log_dir)
        >>> fleet.start(); fleet.base_urls(wait=300)
        ['http://127.0.0.1:40123/v1', 'http://127.0.0.1:40125/v1']
    """

    def __init__(self, settings: LocalServerSettings, cache_dir: Path, log_dir: Path):
        self.settings = settings
        each = replica_settings(settings, settings.replicas)
        self.servers = []
        for i in range(1, settings.replicas + 1):
            server = LocalServer(each, cache_dir, log_dir)
            server.log_path = log_dir / f"llama-server-{i}.log"
            self.servers.append(server)

    def __getattr__(self, name: str) -> Any:
        # What every replica shares (binary, model path, n_ctx_train, warnings, log path of the first) is the
        # first replica's: `doctor` and the receipts read these from whatever `make_local` returned.
        if name == "servers":
            raise AttributeError(name)
        return getattr(self.servers[0], name)

    def start(self) -> None:
        for server in self.servers:
            server.start()

    def stop(self, grace: float = 10.0) -> None:
        for server in self.servers:
            server.stop(grace)

    def base_urls(self, wait: float = 0.0) -> list[str]:
        """The URLs of every ready replica, waiting up to `wait` seconds for the first one.

        Raises:
            BackendUnavailable: No replica is ready in time; the message gives each one's state.
        """
        return [url for _, url in self.ready_replicas(wait)]

    def ready_replicas(self, wait: float = 0.0) -> list[tuple[int, str]]:
        """(replica number from 1, URL) of every ready replica, waiting up to `wait` seconds for the first one.

        The numbers stay with the replicas: with replica 1 down, replica 2 is still number 2, so answers
        and receipts name the replica that served them.

        Raises:
            BackendUnavailable: No replica is ready in time; the message gives each one's state.
        """
        deadline = time.monotonic() + wait
        while True:
            urls = []
            for number, server in enumerate(self.servers, start=1):
                try:
                    urls.append((number, server.base_url(0.0)))
                except BackendUnavailable:
                    continue
            left = deadline - time.monotonic()
            if urls or left <= 0 or all(s.state in ("disabled", "failed") for s in self.servers):
                break
            time.sleep(min(left, 0.5))
        if urls:
            return urls
        states = "; ".join(f"replica {i}: {s.state}: {s.reason}" for i, s in enumerate(self.servers, start=1))
        raise BackendUnavailable(f"no local llama-server replica is ready ({states})")

    def base_url(self, wait: float = 0.0) -> str:
        return self.base_urls(wait)[0]

    @property
    def model_name(self) -> str:
        return self.servers[0].model_name

    @property
    def pid(self) -> int | None:
        return self.servers[0].pid

    @property
    def state(self) -> str:
        states = {s.state for s in self.servers}
        return "ready" if "ready" in states else next(iter(states))

    def model_info(self) -> dict[str, Any]:
        info = self.servers[0].model_info()
        return {**info, "replicas": len(self.servers)}

    def status(self) -> dict[str, Any]:
        replicas = [s.status() for s in self.servers]
        return {"state": self.state, "replicas": replicas,
                "reason": f"{sum(r['state'] == 'ready' for r in replicas)} of {len(replicas)} replicas ready"}
