"""MCP tools over the document index: `ingest_documents`, `list_collections`, resource `collection://index`."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sme_mcp.server.tool_errors import reports_errors
from sme_mcp.tools import doc_index
from sme_mcp.tools.doc_index import (
    COLLECTION_NAME,
    DEFAULT_COLLECTION,
    CollectionInfo,
    DocumentIndex,
    DocumentIndexError,
    IngestReport,
)
from sme_mcp.tools.embedder import EmbedderSettings
from sme_mcp.tools.errors import SmeError
from sme_mcp.tools.file_access import AllowedFolders, WalkLimits

if TYPE_CHECKING:
    from sme_mcp.config.settings import Settings

IndexFactory = Callable[[], DocumentIndex]
log = logging.getLogger(__name__)


Collection = Annotated[str, Field(
    pattern=COLLECTION_NAME.pattern,
    description=f"Collection to add to (created if new); '{DEFAULT_COLLECTION}' is the one the general expert searches",
)]
Paths = Annotated[list[Annotated[str, Field(max_length=4096)]], Field(
    min_length=1, max_length=1000,
    description="Absolute paths of files or folders on the server's machine, inside the folders the server allows; "
    "folders are read recursively. Supported: .txt .md .markdown .rst .html .htm (and .pdf when pypdf is installed)",
)]


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


def default_index(settings: Settings, embedder: EmbedderSettings | None = None) -> DocumentIndex:
    """The service's index: LanceDB under the data dir, the embedding model assembled under the cache dir."""
    return doc_index.default_index(settings.data_dir, settings.cache_dir, embedder)


def register_rag_tools(server: MCPServer, index_factory: IndexFactory, allowed_roots: Sequence[Path] = (),
                       walk_limits: WalkLimits | None = None) -> None:
    """Adds the document tools and resource to `server`.

    Args:
        server: The MCP server.
        index_factory: Builds the index on first use (the embedding model loads only when embedding).
        allowed_roots: The only folders `ingest_documents` may read (resolved here, once; every named path,
            with its symlinks and `..` resolved, must lie inside one). Empty: clients may ingest nothing.
        walk_limits: Bounds on each call's folder walk (files, depth, seconds); default `WalkLimits()`.
    """
    lock = threading.Lock()
    holder: list[DocumentIndex] = []

    def get_index() -> DocumentIndex:
        with lock:
            if not holder:
                holder.append(index_factory())
            return holder[0]

    folders = AllowedFolders(allowed_roots, "SME_CLIENT_FILES__INGEST_ROOTS")
    limits = walk_limits or WalkLimits()

    def check_paths(paths: list[str]) -> list[Path]:
        """The named paths resolved, each once; refused (before anything about them is looked at) when outside."""
        resolved = list(dict.fromkeys(folders.resolve(raw) for raw in paths))
        if not any(path.exists() for path in resolved):
            raise ToolError(f"none of the paths exists on the server's machine: {', '.join(map(str, resolved))}; "
                            f"the folders clients may ingest from are: {folders.describe()}")
        return resolved

    @server.tool(
        description="Index files and folders (text, Markdown, HTML) into a document collection for retrieval: "
        "chunked, embedded locally and full-text indexed. Only paths inside the folders this server allows are read "
        f"({folders.describe()}). Unchanged files are skipped, changed ones replaced; unreadable or unsupported "
        "files are listed with the reason. Sends progress per file.",
        annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True,
                                    openWorldHint=False),
    )
    @reports_errors
    async def ingest_documents(ctx: Context, paths: Paths, collection: Collection = DEFAULT_COLLECTION) -> IngestReport:
        resolved = check_paths(paths)
        token = anyio.lowlevel.current_token()
        cancel = threading.Event()

        def progress(done: int, total: int) -> None:
            with contextlib.suppress(Exception):  # a client gone mid-run must not stop the ingestion
                anyio.from_thread.run(functools.partial(ctx.report_progress, done, total, f"{done}/{total} files"),
                                      token=token)

        def work() -> IngestReport:
            return get_index().ingest(collection, resolved, progress=progress, cancel=cancel, folders=folders,
                                      limits=limits)

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except OSError as exc:
            raise ToolError(f"cannot write the document index: {exc.strerror or type(exc).__name__}; check that the "
                            "data directory (SME_DATA_DIR) is writable and has space") from exc
        except SmeError:
            raise
        except Exception as exc:  # what a user needs to know here: what was indexed stays indexed
            log.exception("ingest_documents failed unexpectedly")
            raise ToolError(f"ingest_documents failed unexpectedly ({type(exc).__name__}); files indexed before the "
                            "failure stay indexed. Try again; the server log has the details") from exc
        finally:
            cancel.set()  # on client cancellation the worker stops before its next file

    def read_collections() -> list[CollectionInfo]:
        try:
            return get_index().collections()
        except DocumentIndexError:
            raise
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            raise DocumentIndexError(f"cannot read the document index{where}: {exc.strerror or type(exc).__name__}; "
                                     "check the data directory (SME_DATA_DIR)") from exc
        except Exception as exc:
            log.exception("reading the document collections failed")
            raise DocumentIndexError(f"reading the document collections failed ({type(exc).__name__}); the index "
                                     "under the data directory may be damaged: re-ingest the documents into a new "
                                     "collection. The server log has the details") from exc

    @server.tool(
        description="List the document collections with their number of files and chunks and their embedding model.",
        annotations=ToolAnnotations(readOnlyHint=True, openWorldHint=False, idempotentHint=True, destructiveHint=False),
    )
    @reports_errors
    async def list_collections() -> CollectionList:
        return CollectionList(collections=await anyio.to_thread.run_sync(read_collections))

    @server.resource("collection://index", name="collections", mime_type="application/json",
                     description="The document collections: name, files, chunks, embedding model")
    def collection_index() -> str:
        try:
            return json.dumps([c.model_dump() for c in read_collections()], indent=1)
        except DocumentIndexError as exc:
            raise ResourceError(str(exc)) from exc
