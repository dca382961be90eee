"""Text out of files (plain text, Markdown, HTML, PDF) and text into overlapping chunks, for the document index.

Example:
    >>> doc = extract(Path("notes.md"), b"# Tides\\n\\nThe Moon pulls the sea.")
    >>> doc.title, [c.text for c in chunk_text(doc.text, size=40, overlap=10)]
    ('Tides', ['# Tides\\n\\nThe Moon pulls the sea.'])
"""

from __future__ import annotations

import importlib.util
import io
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

TEXT_SUFFIXES = frozenset({".txt", ".text", ".md", ".markdown", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
PDF_SUFFIXES = frozenset({".pdf"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


class FileSkipped(ValueError):
    """One file cannot be indexed (unsupported, unreadable or corrupt); the message says why."""



@dataclass(frozen=True)
class Document:
    text: str
    title: str


@dataclass(frozen=True)
class Chunk:
    text: str
    start: int
    end: int


# ---------------------------------------------------------------------------------------------
# Chunking


def chunk_text(text: str, size: int = 800, overlap: int = 150) -> list[Chunk]:
    """Splits `text` into chunks of at most `size` characters, consecutive ones sharing about `overlap`.

    A chunk ends, by preference, at a paragraph break, else at a sentence end, else between words,
    within its last half; the next one starts at a sentence or word start inside the overlap.
    """
    if not 0 <= overlap < size:
        raise ValueError(f"need 0 <= overlap < size, got overlap={overlap}, size={size}")
    chunks: list[Chunk] = []
    n = len(text)
    start = _skip_space(text, 0)
    while start < n:
        end = n if start + size >= n else _cut(text, start, start + size, start + size // 2)
        stop = end
        while stop > start and text[stop - 1].isspace():
            stop -= 1
        if stop > start:
            chunks.append(Chunk(text[start:stop], start, stop))
        if end >= n:
            break
        start = max(_skip_space(text, _overlap_start(text, max(end - overlap, start + 1), end)), start + 1)
    return chunks


_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s")


def _cut(text: str, start: int, limit: int, earliest: int) -> int:
    """Where to end a chunk that may not extend past `limit`."""
    para = text.rfind("\n\n", earliest, limit)
    if para != -1:
        return para
    ends = [m.end() - 1 for m in _SENTENCE_END.finditer(text, earliest, limit + 1)]
    if ends:
        return ends[-1]
    space = max(text.rfind(" ", earliest, limit), text.rfind("\n", earliest, limit))
    return space if space != -1 else limit


def _overlap_start(text: str, lo: int, end: int) -> int:
    """The first sentence start in [lo, end), else the first word start, else `end`."""
    match = _SENTENCE_END.search(text, lo, end)
    if match and _skip_space(text, match.end()) < end:  # not just the sentence that ends the chunk
        return match.end()
    for i in range(lo, end):
        if text[i - 1].isspace() and not text[i].isspace():
            return i
    return end


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


# ---------------------------------------------------------------------------------------------
# Text extraction


def extract(path: Path, data: bytes) -> Document:
    """The text and title of one file, chosen by its suffix.

    Raises:
        FileSkipped: Unsupported type, not UTF-8, binary, or a corrupt PDF.
    """
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        text = _decode(data)
        return Document(text, _markdown_title(text) or path.stem)
    if suffix in HTML_SUFFIXES:
        parser = _HTMLText()
        parser.feed(_decode(data, _html_charset(data)))
        parser.close()
        return Document(parser.text(), parser.title or path.stem)
    if suffix in PDF_SUFFIXES:
        return _pdf(path, data)
    raise FileSkipped(_unsupported(path))


def _unsupported(path: Path) -> str:
    return f"unsupported file type {path.suffix or '(no suffix)'}; supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}"


def _decode(data: bytes, encoding: str = "utf-8") -> str:
    if b"\x00" in data[:8192]:
        raise FileSkipped("looks like a binary file (NUL bytes), not text")
    try:
        text = data.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
    except UnicodeDecodeError as exc:
        raise FileSkipped(f"not valid {encoding} text (bad byte at offset {exc.start}); convert it to UTF-8") from exc
    except LookupError as exc:
        raise FileSkipped(f"unknown text encoding {encoding!r}") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _markdown_title(text: str) -> str | None:
    lines = text.lstrip().splitlines()[:40]
    if lines and lines[0].strip() == "---":  # YAML front matter
        for line in lines[1:]:
            if line.strip() == "---":
                break
            if line.lower().startswith("title:"):
                return line.split(":", 1)[1].strip().strip("\"'") or None
    for line in lines:
        if line.startswith("# "):
            return line[2:].strip() or None
    return None


def _html_charset(data: bytes) -> str:
    match = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_.:-]+)""", data[:4096], re.IGNORECASE)
    return match.group(1).decode("ascii") if match else "utf-8"


class _HTMLText(HTMLParser):
    """Visible text of an HTML page, with block elements as paragraph breaks, and its <title>."""

    BLOCKS = frozenset({
        "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption", "footer", "form",
        "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
        "table", "td", "th", "tr", "ul",
    })
    # Not <head>: pages often omit </head>, which would hide the whole body; its text is in these anyway.
    HIDDEN = frozenset({"script", "style", "noscript", "template", "svg"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title: str | None = None
        self._hidden = 0
        self._in_title = False
        self._title_parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
            self.title = " ".join("".join(self._title_parts).split()) or self.title
        elif tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title_parts.append(data)
        elif not self._hidden:
            self.parts.append(data)

    def text(self) -> str:
        paragraphs = (" ".join(p.split()) for p in "".join(self.parts).split("\n\n"))
        return "\n\n".join(p for p in paragraphs if p)


def _pdf(path: Path, data: bytes) -> Document:
    if not data.lstrip()[:5] == b"%PDF-":
        raise FileSkipped("not a PDF file (no %PDF- header)")
    if importlib.util.find_spec("pypdf") is None:
        raise FileSkipped("PDF files need the pypdf package, which is not installed (pip install pypdf)")
    import pypdf

    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
        title = (reader.metadata.title if reader.metadata else None) or path.stem
    except Exception as exc:  # pypdf raises many exception types for damaged files
        raise FileSkipped(f"unreadable PDF: {exc}") from exc
    return Document("\n\n".join(p.strip() for p in pages if p.strip()), str(title))
