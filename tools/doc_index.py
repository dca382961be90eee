"""`DocumentIndex`: documents chunked, embedded and stored in embedded LanceDB, searched by vector, BM25 or both.

Layout: one LanceDB directory (`root`), one table per collection, one row per chunk. Ingestion is
incremental (a file whose sha256 is unchanged is skipped) and atomic per file: a file's new chunks
are written and its old ones deleted in one LanceDB commit, so a search never sees half a file.
A file that cannot be read is reported and skipped; whatever was indexed from it before stays.
Re-ingesting a folder also follows moves (same content at a new path keeps its vectors) and drops
files deleted from it.

lancedb and pyarrow are imported on first use, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

from sme_mcp.tools.doc_extract import (  # noqa: F401 - re-exported: the index's public names
    HTML_SUFFIXES,
    PDF_SUFFIXES,
    SUPPORTED_SUFFIXES,
    TEXT_SUFFIXES,
    Chunk,
    Document,
    FileSkipped,
    _unsupported,
    chunk_text,
    extract,
)
from sme_mcp.tools.doc_walk import _OUTSIDE, FileProblem, _Walk  # noqa: F401 - re-exported
from sme_mcp.tools.errors import SmeError
from sme_mcp.tools.file_access import UNLIMITED, AccessDenied, AllowedFolders, FileRefused, WalkLimits, read_bytes

if TYPE_CHECKING:
    import numpy as np

    from sme_mcp.tools.embedder import EmbedderSettings

COLLECTION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
DEFAULT_COLLECTION = "general"  # the collection the general expert searches; the CLI's and the tool's default
SearchMode = Literal["hybrid", "vector", "fts"]
Fusion = Literal["rrf", "linear"]
# Old table versions stay readable this long after a compaction, for searches already running.
_KEEP_OLD_VERSIONS = timedelta(minutes=10)
MAX_LISTED_SKIPPED = 500  # a report lists at most this many skipped files (the rest are counted)


class Embedder(Protocol):
    """What the index needs from an embedder (`LocalEmbedder` is one)."""

    @property
    def model_name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


class DocumentIndexError(SmeError, ValueError):
    """A request the index cannot serve; the message says what to do instead."""


class FileDuplicate(ValueError):
    """The file's bytes are already indexed under another existing path; its content is searchable."""



class Hit(BaseModel):
    """One retrieved chunk. `score` is higher-is-better, but its scale depends on the search mode:
    cosine similarity (vector), BM25 (fts) or reciprocal-rank fusion (hybrid)."""

    text: str
    source: str = Field(description="Absolute path of the file the chunk came from")
    title: str
    score: float
    chunk_id: str
    chunk: int = Field(description="Index of the chunk within its file")
    start: int = Field(description="Character offset of the chunk in the file's extracted text")
    end: int
    similarity: float | None = Field(
        default=None, description="Cosine similarity of the chunk's embedding to the query's (vector and hybrid)")



class IngestReport(BaseModel):
    collection: str
    added: list[str] = Field(default_factory=list, description="New files, now indexed")
    updated: list[str] = Field(default_factory=list, description="Changed files whose chunks were replaced")
    unchanged: list[str] = Field(default_factory=list, description="Files skipped because their sha256 is unchanged")
    moved: list[str] = Field(default_factory=list, description="Indexed files found at a new path (not re-embedded)")
    removed: list[str] = Field(default_factory=list, description="Files gone from an ingested folder, now unindexed")
    duplicates: list[FileProblem] = Field(
        default_factory=list,
        description="Files not indexed again because the same bytes are indexed under another path that still exists")
    skipped: list[FileProblem] = Field(default_factory=list, description="Files not indexed, with the reason")
    skipped_not_listed: int = Field(default=0, description=f"Skipped files beyond the first {MAX_LISTED_SKIPPED}, "
                                    "counted but not listed")
    walk_limit: str | None = Field(
        default=None, description="Set when a folder walk stopped at a limit (files, depth or time): what it did "
        "not reach was neither indexed nor removed")
    chunks_written: int = 0
    documents: int = Field(default=0, description="Files in the collection after ingestion")
    chunks: int = Field(default=0, description="Chunks in the collection after ingestion")
    cancelled: bool = Field(default=False, description="Stopped early; the files listed were handled")
    seconds: float = 0.0


class CollectionInfo(BaseModel):
    name: str
    documents: int
    chunks: int
    embedding_model: str | None = None


# ---------------------------------------------------------------------------------------------
# The index


@dataclass
class _Pending:
    source: str
    doc_id: str
    sha256: str
    title: str
    chunks: list[Chunk]
    is_update: bool
    moved_from: str | None = None


class DocumentIndex:
    """Collections of chunked, embedded documents in one embedded LanceDB directory.

    Args:
        root: LanceDB directory (created when needed).
        embedder: Turns texts into vectors; its model name is recorded per collection.
        chunk_size: Maximum characters per chunk.
        chunk_overlap: Characters shared by consecutive chunks.
        max_file_bytes: Larger files are skipped (reported), to bound memory.
        write_batch: Chunks embedded and committed together (whole files only).
        hybrid_fusion: How hybrid search merges the vector and BM25 lists: reciprocal-rank fusion
            ("rrf"), or 0.7 x cosine + 0.3 x BM25 after min-max scaling ("linear").
        hybrid_pool: Candidates taken from each list before fusion (at least k).
    """

    def __init__(self, root: Path, embedder: Embedder, chunk_size: int = 800, chunk_overlap: int = 150,
                 max_file_bytes: int = 50_000_000, write_batch: int = 256, hybrid_fusion: Fusion = "rrf",
                 hybrid_pool: int = 20):
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError("need 0 <= chunk_overlap < chunk_size")
        if hybrid_fusion not in ("rrf", "linear"):
            raise ValueError(f"unknown hybrid fusion {hybrid_fusion!r}; use rrf or linear")
        self.root = Path(root)
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.max_file_bytes = max_file_bytes
        self.write_batch = write_batch
        self.hybrid_fusion = hybrid_fusion
        self.hybrid_pool = hybrid_pool
        self._db: Any = None
        self._write_lock = threading.Lock()
        self._fts_checked: set[str] = set()

    # -- tables ----------------------------------------------------------------------------------

    def _connect(self) -> Any:
        if self._db is None:
            import lancedb

            self.root.mkdir(parents=True, exist_ok=True)
            # Consistency interval 0: every read sees writes made by other processes (CLI ingest
            # while the server runs) at the cost of one manifest check per query.
            self._db = lancedb.connect(str(self.root), read_consistency_interval=timedelta(0))
        return self._db

    def _table_names(self) -> list[str]:
        db, names, token = self._connect(), [], None
        while True:
            page = db.list_tables(page_token=token)
            names.extend(page.tables)
            token = page.page_token
            if not token:
                return sorted(names)

    def _schema(self) -> Any:
        import pyarrow as pa

        return pa.schema([
            pa.field("id", pa.string()), pa.field("doc_id", pa.string()), pa.field("source", pa.string()),
            pa.field("title", pa.string()), pa.field("chunk", pa.int32()), pa.field("start", pa.int64()),
            pa.field("end", pa.int64()), pa.field("sha256", pa.string()), pa.field("text", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), self.embedder.dim)),
        ], metadata={"embedding_model": self.embedder.model_name, "dim": str(self.embedder.dim)})

    def _open(self, collection: str, create: bool = False) -> Any:
        _check_name(collection)
        db = self._connect()
        if collection not in self._table_names():
            if not create:
                raise DocumentIndexError(
                    f"no collection {collection!r}; ingest documents into it first (existing: "
                    f"{', '.join(self._table_names()) or 'none'})"
                )
            return db.create_table(collection, schema=self._schema(), exist_ok=True)
        table = db.open_table(collection)
        built_with = _model_of(table)
        if built_with is not None and built_with != self.embedder.model_name:
            raise DocumentIndexError(
                f"collection {collection!r} was embedded with {built_with!r}, but this index embeds with "
                f"{self.embedder.model_name!r}; use the same model or ingest into a new collection"
            )
        return table

    # -- ingestion -------------------------------------------------------------------------------

    def ingest(self, collection: str, paths: Iterable[str | Path],
               progress: Callable[[int, int], None] | None = None,
               cancel: threading.Event | None = None, folders: AllowedFolders | None = None,
               limits: WalkLimits = UNLIMITED) -> IngestReport:
        """Indexes files and folders (recursively; hidden entries are ignored) into `collection`.

        Args:
            collection: Collection name (letters, digits, '_' and '-'); created when new.
            paths: Files or folders; a path named twice, or inside another named folder, is walked once.
            progress: Called as `progress(done, total)` after each file.
            cancel: When set, ingestion stops before the next file; files already written stay
                indexed (and searchable), the rest is left as it was, and the report says `cancelled`.
            folders: When given (paths a client named), only files that resolve inside these folders
                are read: a link out of them is reported, not followed, and each file is opened with
                the boundary checked on the open descriptor. The caller checks `paths` themselves.
            limits: Bounds on the folder walk (files looked at, depth, seconds); the report's
                `walk_limit` says when one was reached.

        Raises:
            DocumentIndexError: Bad collection name, or a collection embedded with another model.
        """
        started = time.monotonic()
        _check_name(collection)
        report = IngestReport(collection=collection)
        files, walked = self._walk(paths, report, folders, limits)
        with self._write_lock:
            table = self._open(collection, create=True)
            known = _known_files(table)
            # Indexed files no longer on disk: a new file with the same content is one of them moved
            # (or the whole folder, e.g. a fresh clone elsewhere); the rest, inside an ingested folder, are removed.
            gone: dict[str, list[str]] = {}  # sha256 -> sources
            for source, sha in known.items():
                if not Path(source).exists():
                    gone.setdefault(sha, []).append(source)
            pending: list[_Pending] = []
            try:
                for done, path in enumerate(files, 1):
                    if cancel is not None and cancel.is_set():
                        report.cancelled = True
                        pending = []
                        break
                    item = self._prepare(path, known, gone, report, folders)
                    if item is not None:
                        pending.append(item)
                        if sum(len(p.chunks) for p in pending) >= self.write_batch:
                            self._write(table, pending, report)
                            pending = []
                    if progress is not None:
                        progress(done, len(files))
                if pending:
                    self._write(table, pending, report)
                if not report.cancelled and report.walk_limit is None:  # a cut-short walk proves no file gone
                    removed = sorted(s for sources in gone.values() for s in sources
                                     if any(Path(s).is_relative_to(f) for f in walked))
                    if removed:
                        table.delete(f"doc_id IN ({_sql_list(_doc_id(s) for s in removed)})")
                        report.removed.extend(removed)
            finally:
                # Also after an error or cancellation: what was written must be found by full-text search.
                if report.added or report.updated or report.moved or report.removed:
                    self._reindex(table)
            report.chunks = table.count_rows()
            report.documents = len(_known_files(table))
        if len(report.skipped) > MAX_LISTED_SKIPPED:
            report.skipped_not_listed = len(report.skipped) - MAX_LISTED_SKIPPED
            del report.skipped[MAX_LISTED_SKIPPED:]
        report.seconds = round(time.monotonic() - started, 3)
        return report

    def _walk(self, paths: Iterable[str | Path], report: IngestReport, folders: AllowedFolders | None,
              limits: WalkLimits) -> tuple[list[Path], list[Path]]:
        """The files to ingest, and the folders among `paths` (resolved), within `limits`.

        Hidden entries are ignored. A symlink is followed only when it resolves inside `folders`
        (when given) and, for a folder, one not walked yet (no loops).
        """
        files: dict[Path, None] = {}  # ordered and de-duplicated
        targets: dict[Path, Path] = {}  # resolved -> as given, each once
        for raw in paths:
            given = Path(raw).expanduser()
            targets.setdefault(given.resolve(), given)
        dirs = [p for p in targets if p.is_dir()]
        walked: list[Path] = []
        walk = _Walk(limits, folders, report)
        for real, given in targets.items():
            if real in dirs:
                if any(real != d and real.is_relative_to(d) for d in dirs):
                    continue  # inside another named folder: walked with it
                walked.append(real)
                found = walk.folder(real)
                files.update(dict.fromkeys(found))
            elif real.is_file():
                if folders is not None and not folders.contains(real):
                    report.skipped.append(FileProblem(path=str(given), reason=_OUTSIDE))
                else:
                    files[real] = None
            else:
                report.skipped.append(FileProblem(path=str(given), reason="no such file or folder"))
            if walk.stopped:
                break
        report.walk_limit = walk.limited
        return list(files), walked

    def _prepare(self, path: Path, known: dict[str, str], gone: dict[str, list[str]],
                 report: IngestReport, folders: AllowedFolders | None = None) -> _Pending | None:
        """Reads, hashes, extracts and chunks one file; None when it is unchanged or skipped.

        A new file with the content of an indexed file that is `gone` is that file moved (taken from `gone`).
        """
        source = str(path)
        try:
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise FileSkipped(_unsupported(path))
            data = read_bytes(path, self.max_file_bytes, folders)
            sha = hashlib.sha256(data).hexdigest()
            if known.get(source) == sha:
                report.unchanged.append(source)
                return None
            if source not in known and gone.get(sha):
                moved_from = gone[sha].pop(0)
                return _Pending(source, _doc_id(source), sha, "", [], is_update=False, moved_from=moved_from)
            if source not in known:
                # The same bytes indexed under another path that still exists (a second checkout, a copy):
                # indexing them again would only return every passage twice.
                twin = next((s for s, h in known.items() if h == sha and s != source and Path(s).exists()), None)
                if twin is not None:
                    # A client is not told paths outside its folders (files the user ingested from the CLI).
                    shown = twin if folders is None or folders.contains(Path(twin)) else "file"
                    raise FileDuplicate(f"same content as the indexed {shown}")
            doc = extract(path, data)
            chunks = chunk_text(doc.text, self.chunk_size, self.chunk_overlap)
            if not chunks:
                raise FileSkipped("no text to index")
        except FileDuplicate as exc:
            report.duplicates.append(FileProblem(path=source, reason=str(exc)))
            return None
        except (FileSkipped, FileRefused) as exc:
            report.skipped.append(FileProblem(path=source, reason=str(exc)))
            return None
        except AccessDenied:
            report.skipped.append(FileProblem(path=source, reason=_OUTSIDE))
            return None
        except OSError as exc:
            report.skipped.append(FileProblem(path=source, reason=f"cannot read: {exc.strerror or exc}"))
            return None
        return _Pending(source, _doc_id(source), sha, doc.title, chunks, is_update=source in known)

    def _write(self, table: Any, pending: list[_Pending], report: IngestReport) -> None:
        """Embeds whole files and swaps their chunks in with one commit (merge-insert plus delete)."""
        import pyarrow as pa

        fresh = [p for p in pending if p.moved_from is None]
        moved = {_doc_id(p.moved_from): p for p in pending if p.moved_from is not None}
        parts = [self._embed_rows(table, fresh)] if fresh else []
        if moved:
            parts.append(_relabelled_rows(table, moved))
        doc_ids = _sql_list([p.doc_id for p in pending] + list(moved))
        (table.merge_insert("id").when_matched_update_all().when_not_matched_insert_all()
         .when_not_matched_by_source_delete(f"doc_id IN ({doc_ids})").execute(pa.concat_tables(parts)))
        for p in pending:
            (report.moved if p.moved_from else report.updated if p.is_update else report.added).append(p.source)
        report.chunks_written += sum(len(p.chunks) for p in fresh)

    def _embed_rows(self, table: Any, pending: list[_Pending]) -> Any:
        """The rows of new or changed files, embedded, as a table with the collection's schema."""
        import pyarrow as pa

        texts = [_embedding_text(p.title, c.text) for p in pending for c in p.chunks]
        vectors = self.embedder.embed(texts)
        items = [(p, i, c) for p in pending for i, c in enumerate(p.chunks)]
        columns = {
            "id": [f"{p.doc_id}-{i:06d}" for p, i, _ in items], "doc_id": [p.doc_id for p, _, _ in items],
            "source": [p.source for p, _, _ in items], "title": [p.title for p, _, _ in items],
            "chunk": [i for _, i, _ in items], "start": [c.start for _, _, c in items],
            "end": [c.end for _, _, c in items], "sha256": [p.sha256 for p, _, _ in items],
            "text": [c.text for _, _, c in items],
            "vector": pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1]),
        }
        return pa.Table.from_pydict(columns, schema=table.schema)

    def _reindex(self, table: Any) -> None:
        from lancedb.index import FTS

        table.optimize(cleanup_older_than=_KEEP_OLD_VERSIONS)  # compacts the small per-batch fragments
        table.create_index("text", config=FTS(), replace=True)

    def _ensure_fts(self, collection: str, table: Any) -> None:
        """Builds a missing full-text index (a process killed between a write and `_reindex` leaves none)."""
        if collection in self._fts_checked:
            return
        if not any(index.index_type == "FTS" for index in table.list_indices()):
            with self._write_lock:
                self._reindex(table)
        self._fts_checked.add(collection)

    # -- queries ---------------------------------------------------------------------------------

    def search(self, collection: str, query: str, k: int = 5, mode: SearchMode = "hybrid") -> list[Hit]:
        """The `k` best chunks for `query`: by embedding ("vector"), BM25 ("fts") or both fused by RRF ("hybrid").

        Raises:
            DocumentIndexError: Unknown collection or mode, or an empty query.
        """
        if not query or not query.strip():
            raise DocumentIndexError("the query is empty")
        if mode not in ("hybrid", "vector", "fts"):
            raise DocumentIndexError(f"unknown search mode {mode!r}; use hybrid, vector or fts")
        if k < 1:
            raise DocumentIndexError(f"k must be at least 1, got {k}")
        table = self._open(collection)
        if table.count_rows() == 0:
            return []
        if mode != "vector":
            self._ensure_fts(collection, table)
        columns = ["id", "source", "title", "chunk", "start", "end", "text"]
        if mode == "fts":
            query_builder = table.search(query, query_type="fts", fts_columns="text")
            rows = _distinct(query_builder.select([*columns, "_score"]).limit(2 * k).to_list())[:k]
            return [_hit(r, r["_score"], None) for r in rows]
        vector = self.embedder.embed([query])[0]
        if mode == "vector":
            query_builder = table.search(vector).distance_type("cosine").select([*columns, "_distance"])
            rows = _distinct(query_builder.limit(2 * k).to_list())[:k]
            return [_hit(r, 1.0 - r["_distance"], 1.0 - r["_distance"]) for r in rows]
        # LanceDB asks both halves for `limit` rows; a pool larger than k gives the fusion more to go on.
        # No select() here: the hybrid query passes it to both halves, and each lacks the other's score column.
        hybrid = table.search(query_type="hybrid").vector(vector).text(query).distance_type("cosine")
        if self.hybrid_fusion == "linear":
            from lancedb.rerankers import LinearCombinationReranker

            hybrid = hybrid.rerank(LinearCombinationReranker(weight=0.7))
        rows = _distinct(hybrid.limit(max(2 * k, self.hybrid_pool)).to_list())[:k]
        # Fusion scores are rank-based and say nothing about relevance; the cosine does (both vectors are unit norm).
        return [_hit(r, r["_relevance_score"], _cosine(vector, r["vector"])) for r in rows]

    def collections(self) -> list[CollectionInfo]:
        """Every collection with its number of files and chunks."""
        if not self.root.exists():
            return []
        out = []
        for name in self._table_names():
            table = self._connect().open_table(name)
            out.append(CollectionInfo(name=name, documents=len(_known_files(table)), chunks=table.count_rows(),
                                      embedding_model=_model_of(table)))
        return out


def default_index(data_dir: Path, cache_dir: Path, embedder: EmbedderSettings | None = None) -> DocumentIndex:
    """The service's index: LanceDB in ``data_dir/documents``, the embedding model under ``cache_dir/embeddings``."""
    from sme_mcp.tools.embedder import EmbedderSettings, LocalEmbedder

    embedder = embedder or EmbedderSettings()
    if embedder.cache_dir is None:
        embedder = embedder.model_copy(update={"cache_dir": cache_dir / "embeddings"})
    return DocumentIndex(data_dir / "documents", LocalEmbedder(embedder))


def _check_name(collection: str) -> None:
    if not isinstance(collection, str) or not COLLECTION_NAME.match(collection):
        raise DocumentIndexError(
            f"invalid collection name {collection!r}: use 1-64 letters, digits, '_' or '-', starting with a "
            "letter or digit"
        )


def _doc_id(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def _sql_list(doc_ids: Iterable[str]) -> str:
    return ", ".join(f"'{d}'" for d in doc_ids)  # hex digests: safe inside SQL quotes


def _relabelled_rows(table: Any, moved: dict[str, _Pending]) -> Any:
    """The stored rows of moved files (vectors included) under their new path, chunk ids and doc ids."""
    import pyarrow as pa

    rows = table.search().where(f"doc_id IN ({_sql_list(moved)})").limit(None).to_arrow().select(table.schema.names)
    targets = [moved[d] for d in rows["doc_id"].to_pylist()]
    relabelled = {
        "id": pa.array([f"{t.doc_id}-{c:06d}" for t, c in zip(targets, rows["chunk"].to_pylist(), strict=True)]),
        "doc_id": pa.array([t.doc_id for t in targets]), "source": pa.array([t.source for t in targets]),
    }
    for name, column in relabelled.items():
        rows = rows.set_column(rows.schema.get_field_index(name), name, column)
    return rows.cast(table.schema)


def _model_of(table: Any) -> str | None:
    value = (table.schema.metadata or {}).get(b"embedding_model")
    return value.decode() if value else None


def _known_files(table: Any) -> dict[str, str]:
    """source -> sha256 of every indexed file."""
    rows = table.search().select(["source", "sha256"]).limit(None).to_arrow()
    return dict(zip(rows["source"].to_pylist(), rows["sha256"].to_pylist(), strict=True))


def _embedding_text(title: str, text: str) -> str:
    # The title gives a chunk from the middle of a document the topic its own words may lack.
    return text if not title or title in text[: len(title) + 4] else f"{title}\n\n{text}"


def _distinct(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in order, without repeats of a chunk text (copies of a file indexed under two paths)."""
    seen: set[str] = set()
    return [r for r in rows if not (r["text"] in seen or seen.add(r["text"]))]


def _cosine(unit: Any, other: Sequence[float]) -> float:
    import numpy as np

    return float(np.dot(unit, np.asarray(other, dtype=np.float32)))


def _hit(row: dict[str, Any], score: float, similarity: float | None) -> Hit:
    return Hit(text=row["text"], source=row["source"], title=row["title"], score=float(score), chunk_id=row["id"],
               chunk=row["chunk"], start=row["start"], end=row["end"],
               similarity=None if similarity is None else round(similarity, 6))
