"""MCP tools over the document index: `ingest_documents`, `list_collections`, resource `collection://index`."""

from __future__ import annotations

import contextlib
import functools
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from sme_mcp.tools import doc_index
from sme_mcp.tools.doc_index import (
    COLLECTION_NAME,
    DEFAULT_COLLECTION,
    CollectionInfo,
    DocumentIndex,
    DocumentIndexError,
    IngestReport,
)
from sme_mcp.tools.embedder import EmbedderMissing, EmbedderSettings

if TYPE_CHECKING:
    from sme_mcp.experts.settings import Settings

IndexFactory = Callable[[], DocumentIndex]


class IngestDocuments(BaseModel):
    collection: str = Field(
        default=DEFAULT_COLLECTION, pattern=COLLECTION_NAME.pattern,
        description=f"Collection to add to (created if new); '{DEFAULT_COLLECTION}' is the one the general "
        "expert searches",
    )
    paths: list[str] = Field(
        min_length=1, max_length=1000,
        description="Absolute paths of files or folders on the server's machine; folders are read recursively. "
        "Supported: .txt .md .markdown .rst .html .htm (and .pdf when pypdf is installed)",
    )


class NoInput(BaseModel):
    pass


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


def default_index(settings: Settings, embedder: EmbedderSettings | None = None) -> DocumentIndex:
    """The service's index: LanceDB under the data dir, the embedding model assembled under the cache dir."""
    return doc_index.default_index(settings.data_dir, settings.cache_dir, embedder)


def register_rag_tools(server: MCPServer, index_factory: IndexFactory,
                       allowed_roots: Sequence[Path] | None = None) -> None:
    """Adds the document tools and resource to `server`.

    Args:
        server: The MCP server.
        index_factory: Builds the index on first use (the embedding model loads only when embedding).
        allowed_roots: When given, only paths inside these folders may be ingested (for servers
            reachable over HTTP, where a client should not read arbitrary files of the host).
    """
    # Imported here, not at module level, so that app.py can import this module at its top.
    from sme_mcp.server.app import add_model_tool

    lock = threading.Lock()
    holder: list[DocumentIndex] = []

    def get_index() -> DocumentIndex:
        with lock:
            if not holder:
                holder.append(index_factory())
            return holder[0]

    roots = [Path(r).expanduser().resolve() for r in allowed_roots] if allowed_roots is not None else None

    def check_paths(paths: list[str]) -> None:
        for raw in paths:
            path = Path(raw).expanduser()
            if not path.is_absolute():
                raise ToolError(f"path {raw!r} is relative; give absolute paths (the server's working directory "
                                "is not the client's)")
            if roots is not None and not any(path.resolve().is_relative_to(root) for root in roots):
                raise ToolError(f"path {raw!r} is outside the folders this server may read: "
                                f"{', '.join(map(str, roots)) or 'none'}")
        if not any(Path(raw).expanduser().exists() for raw in paths):
            raise ToolError(f"none of the paths exists on the server's machine: {', '.join(paths)}")

    async def ingest_documents(args: IngestDocuments, ctx: Context) -> IngestReport:
        check_paths(args.paths)
        token = anyio.lowlevel.current_token()
        cancel = threading.Event()

        def progress(done: int, total: int) -> None:
            with contextlib.suppress(Exception):  # a client gone mid-run must not stop the ingestion
                anyio.from_thread.run(functools.partial(ctx.report_progress, done, total, f"{done}/{total} files"),
                                      token=token)

        def work() -> IngestReport:
            return get_index().ingest(args.collection, args.paths, progress=progress, cancel=cancel)

        try:
            return await anyio.to_thread.run_sync(work, abandon_on_cancel=True)
        except (DocumentIndexError, EmbedderMissing) as exc:
            raise ToolError(str(exc)) from exc
        except OSError as exc:
            raise ToolError(f"cannot write the document index: {exc}; check the data directory (SME_DATA_DIR) "
                            "is writable and has space") from exc
        finally:
            cancel.set()  # on client cancellation the worker stops before its next file

    add_model_tool(
        server, "ingest_documents", IngestDocuments, ingest_documents, IngestReport,
        "Index files and folders (text, Markdown, HTML) into a document collection for retrieval: chunked, "
        "embedded locally and full-text indexed. Unchanged files are skipped, changed ones replaced; unreadable "
        "or unsupported files are listed with the reason. Sends progress per file.",
        ToolAnnotations(readOnlyHint=False, destructiveHint=False, idempotentHint=True, openWorldHint=False),
        with_context=True,
    )

    async def list_collections(args: NoInput) -> CollectionList:
        try:
            return CollectionList(collections=await anyio.to_thread.run_sync(lambda: get_index().collections()))
        except DocumentIndexError as exc:
            raise ToolError(str(exc)) from exc

    add_model_tool(
        server, "list_collections", NoInput, list_collections, CollectionList,
        "List the document collections with their number of files and chunks and their embedding model.",
        ToolAnnotations(readOnlyHint=True, openWorldHint=False, idempotentHint=True, destructiveHint=False),
    )

    @server.resource("collection://index", name="collections", mime_type="application/json",
                     description="The document collections: name, files, chunks, embedding model")
    def collection_index() -> str:
        return json.dumps([c.model_dump() for c in get_index().collections()], indent=1)
