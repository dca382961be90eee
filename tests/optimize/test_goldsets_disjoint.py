"""The committed gold sets keep their splits apart, also for reworded (near-duplicate) questions."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
GOLDSETS = REPO / "goldsets"
SPLITS = ("train", "dev", "holdout")
DOMAINS = ("math", "code", "general", "router", "science", "timezone")  # the last two: the example experts


@pytest.fixture(scope="module")
def build() -> ModuleType:
    """scripts/build_goldsets.py, imported by path (scripts/ is not a package) for its key functions."""
    spec = importlib.util.spec_from_file_location("build_goldsets", REPO / "scripts" / "build_goldsets.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look the module up while the class is created
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture(scope="module")
def sets(build: ModuleType) -> dict[str, dict[str, list]]:
    def load(path: Path) -> list:
        return [build.Item(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]

    return {domain: {split: load(GOLDSETS / domain / f"{split}.jsonl") for split in SPLITS} for domain in DOMAINS}


def _crossings(items_by_split: dict[str, list], key) -> list[str]:
    first: dict[object, tuple[str, str]] = {}
    crossings = []
    for split in SPLITS:
        for item in items_by_split[split]:
            other_split, other_id = first.setdefault(key(item), (split, item.id))
            if other_split != split:
                crossings.append(f"{item.id} ({split}) ~ {other_id} ({other_split})")
    return crossings


@pytest.mark.parametrize("domain", DOMAINS)
def test_no_normalized_question_in_two_splits(build: ModuleType, sets: dict, domain: str) -> None:
    assert _crossings(sets[domain], lambda item: build.normalized_question(item.question)) == []


@pytest.mark.parametrize("domain", ["math", "router"])
def test_no_near_duplicate_across_splits(build: ModuleType, sets: dict, domain: str) -> None:
    assert _crossings(sets[domain], build.dedup_key) == []


def test_router_reuses_source_questions_within_the_same_split_only(build: ModuleType, sets: dict) -> None:
    splits_of: dict[tuple, set[str]] = {}
    for domain in ("math", "code", "general"):
        for split in SPLITS:
            for item in sets[domain][split]:
                for key in (("text", build.normalized_question(item.question)), build.dedup_key(item)):
                    splits_of.setdefault(key, set()).add(split)
    crossings = [
        f"router {split} {item.id} ~ {sorted(others)}"
        for split in SPLITS
        for item in sets["router"][split]
        for key in (("text", build.normalized_question(item.question)), build.dedup_key(item))
        if (others := splits_of.get(key, set()) - {split})
    ]
    assert crossings == []


def test_key_sees_through_rewording(build: ModuleType) -> None:
    key = build.sympy_key
    assert key("Evaluate the definite integral of cos(x) from x = 0 to x = pi/2.") == key(
        "Compute the integral of cos(x) dx over the interval [0, pi/2].")
    assert key("Integrate x*exp(2*x) with respect to x.") == key(
        "Find the indefinite integral of x*exp(2*x) with respect to x.")
    assert key("Solve for x: x**2 - x - 6 = 0. Give all real solutions.") == key(
        "Find every real x with 2*x**2 - 2*x - 12 = 0.")
    assert key("What is d/dx of x**4 + x**3 - 3?") == key("Find the derivative of x**4 + x**3 + 2 with respect to x.")
    assert key("What is d/dx of x**2 + 8*x?") != key("What is d/dx of x**2 - 8*x?")
    assert key("Evaluate the definite integral of x*exp(x) from x = 0 to x = 1.") != key(
        "Evaluate the definite integral of cos(x) from x = 0 to x = pi/2.")  # both are 1, but not the same problem
    assert build.normalized_question("Who  wrote Hamlet ?") == build.normalized_question("who wrote hamlet")
    with pytest.raises(ValueError):
        key("What is 2 + 2?")
