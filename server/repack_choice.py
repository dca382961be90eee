"""Weight repacking on or off: both timed once on this machine by `sme-mcp setup`, the faster one remembered.

llama.cpp repacks quantized weights into interleaved layouts when it loads them (on by default), which is
faster on many CPUs and slower on others. On a 2-core Xeon VM with AVX512-VNNI and no usable AMX
(2026-12-07, the embedded build and model, three alternating rounds) the plain layout read a 572-token
prompt at 137-140 tokens/s against 89-92 repacked, and decoded at 13.5-13.9 tokens/s against 14.5-14.6.
Prompt reading is most of a general answer's wait (about 500 passage tokens), so there the plain layout
answers about 2 s sooner. Which layout is faster depends on the CPU, the build and the model, so it is
measured, not assumed: setup times one probe answer in each layout and keeps the faster one for that
build and model file (`LocalServer` reads it when `SME_LOCAL__REPACK` is unset).

The kernels differ, so a greedy answer can differ in a token here and there: on the 34 user questions both
layouts answered 30 right; on the 60 tune SQuAD questions step-by-step general answers were right 28 times
with plain weights (receipts/eval-general-custom-20261207T190539Z.json) against 30 repacked
(eval-general-custom-20261207T140511Z.json, an earlier commit of the same question path): 2 broken, none fixed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sme_mcp.tools.files import atomic_write_text

log = logging.getLogger(__name__)

CHOICE_FILE = "llama-server-repack-choice.json"
# The answer the layouts are compared on: the median general answer of bench/user_questions.py reads about
# 500 prompt tokens and writes about 60.
REFERENCE_PROMPT_TOKENS = 500
REFERENCE_GENERATED_TOKENS = 60
# The plain layout is chosen only when it is clearly faster: a probe's noise must not flip the default.
MARGIN = 0.05
PROBE_MAX_TOKENS = 48
# About 690 tokens of plain prose, different from anything a question sends, so no cache serves it.
_PROBE_TEXT = " ".join(
    f"Passage {i}: the river trade of the old port grew each decade as barges carried grain, timber and salt "
    f"downstream, while the town's guilds kept ledgers of every cargo, toll and wage paid on the quays."
    for i in range(1, 15)
)


@dataclass(frozen=True)
class LayoutTiming:
    """One probe answer's speeds, from llama-server's own `timings`."""

    prompt_tokens: int
    prompt_tokens_per_s: float
    generated_tokens: int
    generated_tokens_per_s: float

    def reference_seconds(self) -> float:
        """Seconds this layout would take for the reference answer (500 prompt tokens read, 60 written)."""
        return (REFERENCE_PROMPT_TOKENS / self.prompt_tokens_per_s
                + REFERENCE_GENERATED_TOKENS / self.generated_tokens_per_s)


def probe(base_url: str, timeout: float = 300.0) -> LayoutTiming | None:
    """Times one answer on a ready llama-server: a ~690-token prompt read without the prompt cache, 48 tokens
    written.

    Args:
        base_url: The server's OpenAI-compatible base, `http://host:port/v1`.
        timeout: Seconds to wait for the answer.

    Returns:
        The speeds llama-server reports, or None when it reports none (another server, an error).
    """
    body = {"model": "local", "temperature": 0.0, "max_tokens": PROBE_MAX_TOKENS, "cache_prompt": False,
            "messages": [{"role": "system", "content": "Summarize the passages in plain words."},
                         {"role": "user", "content": _PROBE_TEXT}]}
    request = urllib.request.Request(f"{base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            timings = json.load(resp).get("timings") or {}
        return LayoutTiming(int(timings["prompt_n"]), float(timings["prompt_per_second"]),
                            int(timings["predicted_n"]), float(timings["predicted_per_second"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.info("no timings from the repack probe at %s: %s", base_url, exc)
        return None


def plain_is_faster(repacked: LayoutTiming, plain: LayoutTiming) -> bool:
    """Whether the plain layout answers the reference answer more than `MARGIN` sooner than the repacked one.

    Example:
        >>> plain_is_faster(LayoutTiming(450, 90.0, 48, 14.5), LayoutTiming(450, 139.0, 48, 13.6))
        True
        >>> plain_is_faster(LayoutTiming(450, 90.0, 48, 14.5), LayoutTiming(450, 92.0, 48, 14.0))
        False
    """
    return plain.reference_seconds() < (1 - MARGIN) * repacked.reference_seconds()


@dataclass(frozen=True)
class RepackChoice:
    """What setup measured for one build and model file, and what it chose."""

    repack: bool
    repacked: dict[str, Any]
    plain: dict[str, Any]
    measured_at: str

    def summary(self) -> str:
        """One line for setup's and doctor's output and the receipts."""
        r, p = self.repacked, self.plain
        chosen = "repacked weights" if self.repack else "plain weights (--no-repack)"
        return (f"{chosen}, measured at setup {self.measured_at}: prompt {p['prompt_tokens_per_s']:.0f} tok/s plain "
                f"vs {r['prompt_tokens_per_s']:.0f} repacked, decode {p['generated_tokens_per_s']:.1f} vs "
                f"{r['generated_tokens_per_s']:.1f}")


def choose(repacked: LayoutTiming, plain: LayoutTiming) -> RepackChoice:
    """The choice for two probes, stamped with the time."""
    return RepackChoice(repack=not plain_is_faster(repacked, plain), repacked=asdict(repacked), plain=asdict(plain),
                        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def machine_key() -> str:
    """The CPU a measurement holds for: its model name and the cores this process may use, hashed.

    The same cache directory can be carried to another machine (a container image, a synced home); a choice
    measured on one CPU must not be taken for another.
    """
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    text = f"{platform.machine()}\n{cores}\n"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            text += next((line for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def read_keyed(path: Path) -> dict[str, Any]:
    """A file of facts remembered per key (this module's choices, the supervisor's crash marker): {} when it is
    missing, unreadable or not a JSON object."""
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return known if isinstance(known, dict) else {}


def write_keyed(path: Path, key: str, value: dict[str, Any]) -> None:
    """Sets `key` in such a file, keeping the other keys (an unreadable file is replaced); written atomically."""
    known = read_keyed(path)
    known[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(known, indent=1) + "\n")


def remembered(cache_dir: Path, key: str | None) -> RepackChoice | None:
    """The choice setup made for this build and model (`key`), or None when none was measured."""
    found = read_keyed(cache_dir / CHOICE_FILE).get(key) if key is not None else None
    try:
        return RepackChoice(**found) if isinstance(found, dict) else None
    except TypeError:  # written by another version of this module
        return None


def remember(cache_dir: Path, key: str, choice: RepackChoice) -> None:
    """Keeps `choice` for this build and model; other builds' and models' choices stay."""
    write_keyed(cache_dir / CHOICE_FILE, key, asdict(choice))
