"""The local usage log: every question asked through `ask_expert` or `sme-mcp ask`, and its rating.

One SQLite file under the data dir (`usage.sqlite3`). Nothing in it leaves the machine; a setting
turns it off (`SME_USAGE__ENABLED=false`, then nothing is written at all), the number of entries is
capped (the oldest go first), and `sme-mcp usage --purge` deletes everything. Each call opens its
own short connection, so the MCP server and the CLI can share the file.

Ratings are what the experts learn from (`optimize.usage_items`): a verdict (correct or wrong), an
optional corrected answer and an optional correct domain (the question was routed to the wrong
expert). A later rating of the same entry replaces the earlier one.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from sme_mcp.config.settings import DOMAINS, Domain

if TYPE_CHECKING:
    from sme_mcp.config.settings import Settings
from sme_mcp.tools.errors import SmeError

Verdict = Literal["correct", "wrong"]
ENTRY_ID = re.compile(r"^u-[0-9a-f]{16}$")
MAX_STORED_CHARS = 20_000  # an answer longer than this is stored cut (code answers can be long)
MAX_CORRECTION_CHARS = 20_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    question TEXT NOT NULL,
    asked_domain TEXT,
    domain TEXT,
    routed_by TEXT,
    confidence REAL,
    answer TEXT,
    error TEXT,
    backend TEXT,
    model TEXT,
    program_version TEXT,
    latency_ms REAL,
    cost TEXT,
    verification TEXT,
    client TEXT
);
CREATE INDEX IF NOT EXISTS entries_created ON entries(created_at);
CREATE TABLE IF NOT EXISTS ratings (
    entry_id TEXT PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
    verdict TEXT NOT NULL,
    correction TEXT,
    domain TEXT,
    rated_at REAL NOT NULL
);
"""


class UsageError(SmeError, ValueError):
    """A usage-log request the caller can fix (a malformed or unknown id, a bad verdict); says how."""


class Rating(BaseModel):
    verdict: Verdict
    correction: str | None = None
    domain: Domain | None = Field(default=None, description="The domain the question belonged to, when misrouted")
    rated_at: float


class UsageEntry(BaseModel):
    """One logged question, its answer (or the error) and, once rated, its rating."""

    id: str
    created_at: float
    question: str
    asked_domain: str | None = Field(default=None, description="The domain the caller named, if any")
    domain: str | None = Field(default=None, description="The expert that answered")
    routed_by: str | None = None
    confidence: float | None = None
    answer: str | None = None
    error: str | None = None
    backend: str | None = None
    model: str | None = None
    program_version: str | None = None
    latency_ms: float | None = None
    cost: dict[str, Any] | None = None
    verification: dict[str, Any] | None = None
    client: str | None = Field(default=None, description="mcp or cli")
    rating: Rating | None = None


class DomainStats(BaseModel):
    questions: int = 0
    answered: int = 0
    failed: int = 0
    rated: int = 0
    rated_correct: int = 0
    rated_wrong: int = 0
    share_rated_wrong: float | None = Field(default=None, description="rated wrong / rated (None: nothing rated)")
    misroutes: int = Field(default=0, description="Ratings that named another domain as the right one")
    median_latency_ms: float | None = None


def new_entry_id() -> str:
    return f"u-{secrets.token_hex(8)}"


def check_entry_id(entry_id: object) -> str:
    """The id, stripped, if it has the form the log gives out.

    Raises:
        UsageError: Not a string of the form ``u-`` + 16 hex digits.
    """
    if not isinstance(entry_id, str) or not ENTRY_ID.match(entry_id.strip()):
        shown = entry_id[:40] if isinstance(entry_id, str) else type(entry_id).__name__
        raise UsageError(f"{shown!r} is not an answer id; ids look like 'u-3f9a0c1d2b4e5f60' and come back in the "
                         "'id' field of every ask_expert answer (sme-mcp usage lists recent ones)")
    return entry_id.strip()


class UsageLog:
    """The usage log at `path`; with `enabled=False` it writes nothing and reads as empty.

    Args:
        path: The SQLite file (created with its folder on first write).
        enabled: False: `record` and `rate` do nothing to disk (rate refuses: there is nothing to rate).
        max_entries: The most entries kept; each write beyond it deletes the oldest entries.

    Example:
        >>> log = UsageLog(tmp / "usage.sqlite3")
        >>> entry_id = log.record(question="What is 2+2?", answer="4", domain="math", client="cli")
        >>> log.rate(entry_id, "correct").rating.verdict
        'correct'
    """

    def __init__(self, path: Path, enabled: bool = True, max_entries: int = 10_000):
        self.path = path
        self.enabled = enabled
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._ready = False

    @classmethod
    def from_settings(cls, settings: Settings) -> UsageLog:
        """The usage log the settings name: `<data dir>/usage.sqlite3`, on or off, with its size cap."""
        return cls(settings.data_dir / "usage.sqlite3", settings.usage.enabled, settings.usage.max_entries)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=10.0)
            try:
                conn.execute("PRAGMA foreign_keys = ON")
                if not self._ready:
                    conn.execute("PRAGMA journal_mode = WAL")  # the server and a CLI may use the file at once
                    conn.executescript(_SCHEMA)
                    self._ready = True
                with conn:
                    yield conn
            finally:
                conn.close()

    def _exists(self) -> bool:
        return self.enabled and self.path.is_file()

    # -- writing ---------------------------------------------------------------------------------

    def record(self, *, question: str, entry_id: str | None = None, asked_domain: str | None = None,
               domain: str | None = None, routed_by: str | None = None, confidence: float | None = None,
               answer: str | None = None, error: str | None = None, backend: str | None = None,
               model: str | None = None, program_version: str | None = None, latency_ms: float | None = None,
               cost: dict[str, Any] | None = None, verification: dict[str, Any] | None = None,
               client: str | None = None) -> str:
        """Logs one question and its outcome; returns its id (also when the log is off, for the answer)."""
        entry_id = entry_id or new_entry_id()
        if not self.enabled:
            return entry_id
        row = (entry_id, time.time(), question[:MAX_STORED_CHARS], asked_domain, domain, routed_by, confidence,
               answer[:MAX_STORED_CHARS] if answer is not None else None,
               error[:2000] if error is not None else None, backend, model, program_version, latency_ms,
               json.dumps(cost) if cost is not None else None,
               json.dumps(verification) if verification is not None else None, client)
        with self._connect() as conn:
            conn.execute(f"INSERT INTO entries VALUES ({', '.join('?' * len(row))})", row)
            over = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0] - self.max_entries
            if over > 0:
                conn.execute("DELETE FROM entries WHERE id IN (SELECT id FROM entries ORDER BY created_at LIMIT ?)",
                             (over,))
        return entry_id

    def rate(self, entry_id: str, verdict: str, correction: str | None = None,
             domain: str | None = None, domains: Iterable[str] = DOMAINS) -> UsageEntry:
        """Rates a logged answer (replacing an earlier rating of it) and returns the entry.

        Raises:
            UsageError: The log is off, the id is malformed or unknown, or the verdict, correction or
                domain is not acceptable.
        """
        entry_id = check_entry_id(entry_id)
        if verdict not in ("correct", "wrong"):
            raise UsageError(f"verdict must be 'correct' or 'wrong', not {str(verdict)[:40]!r}")
        domains = tuple(domains)
        if domain is not None and domain not in domains:
            raise UsageError(f"unknown domain {str(domain)[:40]!r}; use one of: {', '.join(domains)}")
        if correction is not None:
            correction = correction.strip() or None
        if correction is not None and len(correction) > MAX_CORRECTION_CHARS:
            raise UsageError(f"the correction is {len(correction)} characters; the limit is {MAX_CORRECTION_CHARS}")
        if correction is not None and verdict == "correct":
            raise UsageError("a correction goes with verdict 'wrong'; with 'correct' the logged answer is the answer")
        if not self.enabled:
            raise UsageError("the usage log is off (SME_USAGE__ENABLED=false), so no answer can be rated")
        if self.get(entry_id) is None:
            raise UsageError(f"no logged answer has the id {entry_id!r}; it may have been purged or pruned "
                             "(sme-mcp usage lists the recent ones)")
        with self._connect() as conn:
            conn.execute("INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?, ?)",
                         (entry_id, verdict, correction, domain, time.time()))
        entry = self.get(entry_id)
        assert entry is not None
        return entry

    def purge(self) -> int:
        """Deletes every entry and rating; returns how many entries there were."""
        if not self._exists():
            return 0
        with self._connect() as conn:
            count = conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0]
            conn.execute("DELETE FROM ratings")
            conn.execute("DELETE FROM entries")
        with self._connect() as conn:
            conn.execute("VACUUM")  # deleted text must not linger in free pages
        return int(count)

    # -- reading ---------------------------------------------------------------------------------

    _SELECT = ("SELECT e.*, r.verdict, r.correction, r.domain, r.rated_at FROM entries e "
               "LEFT JOIN ratings r ON r.entry_id = e.id")

    @staticmethod
    def _entry(row: tuple[Any, ...]) -> UsageEntry:
        (entry_id, created_at, question, asked_domain, domain, routed_by, confidence, answer, error, backend, model,
         program_version, latency_ms, cost, verification, client, verdict, correction, rated_domain,
         rated_at) = row
        rating = None
        if verdict is not None:
            rating = Rating(verdict=verdict, correction=correction, domain=rated_domain, rated_at=rated_at)
        return UsageEntry(
            id=entry_id, created_at=created_at, question=question, asked_domain=asked_domain, domain=domain,
            routed_by=routed_by, confidence=confidence, answer=answer, error=error, backend=backend, model=model,
            program_version=program_version, latency_ms=latency_ms, cost=json.loads(cost) if cost else None,
            verification=json.loads(verification) if verification else None, client=client, rating=rating,
        )

    def get(self, entry_id: str) -> UsageEntry | None:
        if not self._exists():
            return None
        with self._connect() as conn:
            row = conn.execute(f"{self._SELECT} WHERE e.id = ?", (entry_id,)).fetchone()
        return self._entry(row) if row else None

    def recent(self, limit: int = 20, rated_only: bool = False) -> list[UsageEntry]:
        """The newest entries first."""
        if not self._exists():
            return []
        where = "WHERE r.verdict IS NOT NULL " if rated_only else ""
        with self._connect() as conn:
            rows = conn.execute(f"{self._SELECT} {where}ORDER BY e.created_at DESC LIMIT ?", (limit,)).fetchall()
        return [self._entry(row) for row in rows]

    def rated(self) -> list[UsageEntry]:
        """Every rated entry, oldest first (what curation reads)."""
        if not self._exists():
            return []
        with self._connect() as conn:
            rows = conn.execute(f"{self._SELECT} WHERE r.verdict IS NOT NULL ORDER BY e.created_at").fetchall()
        return [self._entry(row) for row in rows]

    def count(self) -> int:
        if not self._exists():
            return 0
        with self._connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def stats(self) -> dict[str, DomainStats]:
        """Per answering domain (plus 'none' for questions that failed before an expert was chosen)."""
        stats: dict[str, DomainStats] = {}
        latencies: dict[str, list[float]] = {}
        if not self._exists():
            return stats
        with self._connect() as conn:
            rows = conn.execute("SELECT e.domain, e.error, e.latency_ms, r.verdict, r.domain FROM entries e "
                                "LEFT JOIN ratings r ON r.entry_id = e.id").fetchall()
        for domain, error, latency_ms, verdict, rated_domain in rows:
            key = domain or "none"
            s = stats.setdefault(key, DomainStats())
            s.questions += 1
            if error is None:
                s.answered += 1
                if latency_ms is not None:
                    latencies.setdefault(key, []).append(latency_ms)
            else:
                s.failed += 1
            if verdict is not None:
                s.rated += 1
                s.rated_correct += verdict == "correct"
                s.rated_wrong += verdict == "wrong"
            if rated_domain is not None and rated_domain != domain:
                s.misroutes += 1
        for key, s in stats.items():
            s.share_rated_wrong = round(s.rated_wrong / s.rated, 4) if s.rated else None
            values = sorted(latencies.get(key, []))
            if values:
                mid = len(values) // 2
                s.median_latency_ms = round(values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2, 1)
        return dict(sorted(stats.items()))
