"""The expert registry: one declaration per expert, everything else derived from it.

An expert is an `ExpertSpec`: its name, what it answers, how its DSPy module is built, which metric
scores it, its eval threshold and its gold set. The built-in math, code and general experts register
through `ExpertRegistry.register` like the experts declared in TOML files (experts/declared.py); the
tool schemas, the router's labels, `list_experts`, `run_eval` and `optimize_domain` all read the
registry, so a new expert needs no edit anywhere else.

Example:
    >>> registry = ExpertRegistry.builtin()
    >>> registry.names
    ('math', 'code', 'general')
    >>> registry.get("math").metric
    'sympy'
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sme_mcp.tools.errors import SmeError

if TYPE_CHECKING:
    import dspy

    from sme_mcp.config.settings import LMSpec, Settings
    from sme_mcp.experts.service import ExpertService

ROUTER = "router"
NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
BuildModule = Callable[["ExpertService"], "dspy.Module"]


class RegistryError(SmeError, ValueError):
    """An expert declaration is broken or incomplete; the message names the expert, its file and what is missing."""


@dataclass(frozen=True)
class ExpertSpec:
    """One expert, declared once.

    Args:
        name: Its domain name: what `ask_expert(domain=...)`, gold sets and programs are called.
        description: What it answers, for `list_experts`, the tool schemas and the router's instructions.
        module: One line on its DSPy program, for `list_experts`.
        build: Makes a fresh, uncompiled module (what optimizers start from) for a service.
        metric: Name of the metric in `sme_mcp.optimize.scoring.METRICS` that scores its answers.
        threshold: Minimum holdout score of its eval gate (`sme-mcp eval` exits non-zero below it).
        goldset_dir: Folder with its `train.jsonl`, `dev.jsonl` and `holdout.jsonl`; None: `<goldsets dir>/<name>`.
        teaches_router: Its train questions are router examples labelled with its name (declared experts;
            the built-ins are in the router's own gold set).
        chain: Its LM fallback chain; None: the role's settings (built-ins) or the general expert's chain.
        source: "built-in", or the file that declared it.
        settings_for_receipt: What beyond the program shapes its answers, recorded in eval receipts.
        close: Releases what the expert holds (e.g. its MCP tool servers) when the service closes.
    """

    name: str
    description: str
    module: str
    build: BuildModule
    metric: str
    threshold: float
    goldset_dir: Path | None = None
    teaches_router: bool = False
    chain: list[LMSpec] | None = None
    source: str = "built-in"
    settings_for_receipt: Callable[[ExpertService], dict[str, Any]] = field(default=lambda service: {})
    close: Callable[[], None] | None = None


class ExpertRegistry:
    """The experts a service answers with, in registration order (built-ins first)."""

    def __init__(self) -> None:
        self._specs: dict[str, ExpertSpec] = {}

    def register(self, spec: ExpertSpec) -> ExpertSpec:
        """Adds an expert; refuses a bad or clashing name, an unknown metric or a missing gold set.

        Raises:
            RegistryError: What is wrong, naming the expert and where it was declared.
        """
        from sme_mcp.optimize.scoring import METRICS

        where = f"expert {spec.name!r} ({spec.source})"
        if not NAME.match(spec.name):
            raise RegistryError(f"{where}: the name must be 2-32 lowercase letters, digits or '_', starting with a "
                                "letter")
        if spec.name == ROUTER:
            raise RegistryError(f"{where}: 'router' is the router's own name; choose another")
        if spec.name in self._specs:
            raise RegistryError(f"{where}: an expert named {spec.name!r} is already registered "
                                f"({self._specs[spec.name].source})")
        if not spec.description.strip():
            raise RegistryError(f"{where}: the description is empty; the router and clients read it")
        if spec.metric not in METRICS:
            raise RegistryError(f"{where}: unknown metric {spec.metric!r}; use one of: {', '.join(sorted(METRICS))}")
        if not 0.0 <= spec.threshold <= 1.0:
            raise RegistryError(f"{where}: threshold {spec.threshold} is not between 0 and 1")
        if spec.goldset_dir is not None:
            missing = [s for s in ("train", "dev", "holdout") if not (spec.goldset_dir / f"{s}.jsonl").is_file()]
            if missing:
                raise RegistryError(f"{where}: its gold set {spec.goldset_dir} has no "
                                    f"{', '.join(m + '.jsonl' for m in missing)}; every expert needs train, dev "
                                    "and holdout splits (goldsets/README.md gives the format)")
        self._specs[spec.name] = spec
        return spec

    @property
    def names(self) -> tuple[str, ...]:
        """Every expert's name (the domains `ask_expert` takes)."""
        return tuple(self._specs)

    @property
    def roles(self) -> tuple[str, ...]:
        """The router and every expert: everything that has a program, a gold set and an LM chain."""
        return (ROUTER, *self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(self._specs.values())

    def get(self, name: str) -> ExpertSpec:
        """The expert called `name`.

        Raises:
            RegistryError: No such expert; the message lists the ones there are.
        """
        try:
            return self._specs[name]
        except KeyError:
            raise RegistryError(f"unknown expert {name!r}; use one of: {', '.join(self._specs)}") from None

    def metric(self, goldset: str) -> str:
        """The metric of a gold set: an expert's, or the router's label match."""
        return "route" if goldset == ROUTER else self.get(goldset).metric

    def goldset_dir(self, goldset: str, goldsets_dir: Path) -> Path:
        """Where a gold set's splits are: the declared folder, or `<goldsets_dir>/<name>`."""
        if goldset == ROUTER:
            return goldsets_dir / ROUTER
        spec = self.get(goldset)
        return spec.goldset_dir if spec.goldset_dir is not None else goldsets_dir / spec.name

    def declared_goldsets(self) -> dict[str, Path]:
        """The gold-set folders experts declared themselves, by name (the shipped ones are under the goldsets dir)."""
        return {spec.name: spec.goldset_dir for spec in self if spec.goldset_dir is not None}

    def threshold(self, goldset: str, overrides: dict[str, float]) -> float | None:
        """The eval threshold: `SME_EVAL_THRESHOLDS` wins, else the expert's own (the router has only the setting)."""
        if goldset in overrides:
            return overrides[goldset]
        return None if goldset == ROUTER else self.get(goldset).threshold

    def router_examples(self) -> list[tuple[str, str]]:
        """(question, expert) from the train split of every expert that teaches the router."""
        from sme_mcp.optimize.goldsets import load_goldset

        examples: list[tuple[str, str]] = []
        for spec in self:
            if spec.teaches_router and spec.goldset_dir is not None:
                examples += [(item.question, spec.name) for item in load_goldset(spec.goldset_dir / "train.jsonl")]
        return examples

    def close(self) -> None:
        for spec in self:
            if spec.close is not None:
                spec.close()

    @classmethod
    def builtin(cls) -> ExpertRegistry:
        """The built-in experts alone."""
        from sme_mcp.experts.builtin_experts import register_builtin_experts

        registry = cls()
        register_builtin_experts(registry)
        return registry

    @classmethod
    def from_settings(cls, settings: Settings) -> ExpertRegistry:
        """The built-in experts, then those declared in the files `SME_EXPERT_FILES` names.

        Raises:
            RegistryError: A declaration file is missing, malformed or incomplete (at start-up, not at the
                first question).
        """
        from sme_mcp.experts.declared import load_declarations

        registry = cls.builtin()
        for spec in load_declarations(settings.expert_files, settings):
            registry.register(spec)
        return registry

    def describe(self, names: Iterable[str] | None = None) -> str:
        """One line per expert, "name: description", for instructions and the router's prompt."""
        return "\n".join(f"- {s.name}: {s.description}" for s in self if names is None or s.name in names)
