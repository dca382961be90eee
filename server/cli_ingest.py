"""`sme-mcp ingest PATH... --collection NAME`: index documents for retrieval, with a progress bar."""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from sme_mcp.tools.doc_index import DEFAULT_COLLECTION


def add_ingest_parser(subparsers: Any) -> None:
    """Adds the `ingest` subcommand to the `sme-mcp` parser's subparsers."""
    p = subparsers.add_parser("ingest", help="index files or folders (text, Markdown, HTML) for retrieval")
    # Run by the user, as the user: any path the user names is read, without the folder boundary and walk
    # limits that the MCP tool ingest_documents applies to clients (SME_CLIENT_FILES__*).
    p.add_argument("paths", nargs="+", metavar="PATH",
                   help="files or folders (read recursively); any path you can read, unlike the MCP tool, which "
                   "reads only the folders in SME_CLIENT_FILES__INGEST_ROOTS")
    p.add_argument("--collection", default=DEFAULT_COLLECTION,
                   help=f"collection to add to (default {DEFAULT_COLLECTION}, the one the general expert searches)")
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    p.set_defaults(func=cmd_ingest)


def cmd_ingest(args: argparse.Namespace) -> int:
    """Ingests the paths; exit 0 when anything is (or already was) indexed, 1 when all were skipped, 2 on error."""
    from sme_mcp.config.settings import Settings
    from sme_mcp.server.progress import TerminalProgress
    from sme_mcp.server.rag_tools import default_index
    from sme_mcp.tools.doc_index import DocumentIndexError
    from sme_mcp.tools.embedder import EmbedderMissing

    index = default_index(Settings())
    bar = TerminalProgress(f"ingest {args.collection}")
    cancel = threading.Event()
    try:
        report = index.ingest(args.collection, args.paths, progress=lambda done, total: bar(done, total),
                              cancel=cancel)
    except (DocumentIndexError, EmbedderMissing) as exc:
        bar.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        cancel.set()
        bar.close()
        print("cancelled; files indexed so far stay indexed", file=sys.stderr)
        return 130
    bar.close()
    if args.json:
        print(report.model_dump_json(indent=2))
    else:
        print(f"{report.collection}: {len(report.added)} added, {len(report.updated)} updated, "
              f"{len(report.unchanged)} unchanged, {len(report.duplicates)} already indexed elsewhere, "
              f"{len(report.skipped)} skipped; {report.chunks_written} chunks "
              f"written in {report.seconds:.1f} s. The collection has {report.documents} files, "
              f"{report.chunks} chunks.")
        if report.duplicates:
            print(f"  {len(report.duplicates)} files have the same content as files indexed from another "
                  f"path (e.g. {report.duplicates[0].reason.removeprefix('same content as the indexed ')})",
                  file=sys.stderr)
        for problem in report.skipped:
            print(f"  skipped {problem.path}: {problem.reason}", file=sys.stderr)
    handled = report.added or report.updated or report.unchanged or report.moved or report.duplicates
    return 0 if handled or not report.skipped else 1
