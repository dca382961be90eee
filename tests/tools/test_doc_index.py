"""`DocumentIndex` with the real embedding model and a real LanceDB directory.

Without the model packages these tests skip, or fail with the install hint when SME_REQUIRE_MODEL=1.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sme_mcp.tools.doc_index import DocumentIndex, DocumentIndexError, chunk_text, extract
from sme_mcp.tools.embedder import EmbedderMissing, EmbedderSettings, LocalEmbedder, assemble_model_dir

ROME = "\n\n".join([
    "Rome was founded, according to legend, by Romulus in 753 BC on the banks of the Tiber.",
    "The Roman Republic replaced the monarchy in 509 BC. Two consuls, elected every year, led the state, "
    "and the Senate advised them. " * 3,
    "Julius Caesar crossed the Rubicon in 49 BC, which started a civil war. After his victory he was made "
    "dictator for life, and he was assassinated on the Ides of March in 44 BC. " * 2,
    "Augustus became the first emperor in 27 BC. The Pax Romana, two centuries of relative peace, followed. " * 3,
    "The Western Roman Empire fell in AD 476 when Odoacer deposed Romulus Augustulus.",
])
DOCS = {
    "etna.md": "# Mount Etna\n\nMount Etna is an active stratovolcano on the east coast of Sicily, Italy. "
               "It is one of the most active volcanoes in the world.\n",
    "eiffel.txt": "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889 for the "
                  "World's Fair and designed by the company of Gustave Eiffel.\n",
    "plants/photosynthesis.md": "# Photosynthesis\n\nPlants use sunlight, water and carbon dioxide to make "
                                "glucose and release oxygen. Chlorophyll absorbs the light.\n",
    "plants/roots.txt": "Roots anchor a plant in the soil and absorb water and dissolved minerals.\n",
    "mars.html": "<html><head><title>Planet Mars</title><script>var hidden = 'rover';</script></head><body>"
                 "<h1>Mars</h1><p>Mars is the fourth planet from the Sun. Its red colour comes from iron "
                 "oxide dust.</p><p>Olympus Mons is the largest volcano in the Solar System.</p></body></html>",
    "rome.md": "# History of Rome\n\n" + ROME + "\n",
}


@pytest.fixture(scope="module")
def embedder(tmp_path_factory: pytest.TempPathFactory) -> LocalEmbedder:
    cache = tmp_path_factory.mktemp("embeddings")
    try:
        assemble_model_dir(cache)
    except EmbedderMissing as exc:
        if os.environ.get("SME_REQUIRE_MODEL") == "1":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    return LocalEmbedder(EmbedderSettings(cache_dir=cache, threads=1))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    root = tmp_path / "corpus"
    for name, text in DOCS.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def index(tmp_path: Path, embedder: LocalEmbedder) -> DocumentIndex:
    return DocumentIndex(tmp_path / "lancedb", embedder)


def test_ingest_then_search_finds_the_right_passage(index: DocumentIndex, corpus: Path) -> None:
    report = index.ingest("docs", [corpus])
    assert sorted(Path(p).name for p in report.added) == sorted(Path(n).name for n in DOCS)
    assert report.skipped == [] and report.documents == len(DOCS)
    assert report.chunks == report.chunks_written > len(DOCS)  # the Rome article is split into several chunks

    questions = {
        "Which volcano is on the coast of Sicily?": "etna.md",
        "When was the Eiffel tower finished?": "eiffel.txt",
        "How do plants turn light into sugar?": "photosynthesis.md",
        "Why is Mars red?": "mars.html",
        "Who killed Caesar and when?": "rome.md",
    }
    for mode in ("hybrid", "vector", "fts"):
        for question, expected in questions.items():
            hits = index.search("docs", question, k=3, mode=mode)
            assert hits, (mode, question)
            assert Path(hits[0].source).name == expected, (mode, question, [h.source for h in hits])

    hit = index.search("docs", "Ides of March assassination", k=1)[0]
    text = (corpus / "rome.md").read_text()
    assert hit.title == "History of Rome" and hit.text == text[hit.start:hit.end] and "Ides of March" in hit.text
    assert hit.chunk_id.endswith(f"-{hit.chunk:06d}") and hit.chunk > 0
    mars = index.search("docs", "largest volcano in the Solar System", k=1, mode="fts")[0]
    assert mars.title == "Planet Mars" and "rover" not in mars.text


def test_reingesting_unchanged_files_changes_nothing(index: DocumentIndex, corpus: Path) -> None:
    first = index.ingest("docs", [corpus])
    before = index.collections()
    again = index.ingest("docs", [corpus, corpus / "etna.md"])  # a file named twice is read once
    assert again.added == [] and again.updated == [] and again.chunks_written == 0
    assert sorted(again.unchanged) == sorted(first.added)
    assert again.chunks == first.chunks and index.collections() == before


def test_a_changed_file_replaces_its_chunks(index: DocumentIndex, corpus: Path) -> None:
    first = index.ingest("docs", [corpus])
    rome = corpus / "rome.md"
    old_chunks = sum(h.source == str(rome) for h in index.search("docs", "Rome", k=100, mode="vector"))
    assert old_chunks > 1
    rome.write_text("# History of Rome\n\nRome is the capital of Italy and hosts the Vatican enclave.\n")

    report = index.ingest("docs", [corpus])
    assert report.updated == [str(rome)] and report.added == [] and len(report.unchanged) == len(DOCS) - 1
    assert report.chunks == first.chunks - old_chunks + 1
    assert all(h.source != str(rome) for h in index.search("docs", "Rubicon Caesar consuls", k=10, mode="fts"))
    assert index.search("docs", "Vatican enclave", k=1, mode="fts")[0].source == str(rome)


def test_a_moved_folder_keeps_its_vectors(index: DocumentIndex, corpus: Path, tmp_path: Path) -> None:
    first = index.ingest("docs", [corpus])
    moved = corpus.rename(tmp_path / "elsewhere")  # e.g. a fresh clone of the repository in another place

    report = index.ingest("docs", [moved])
    assert report.added == report.updated == report.removed == [] and report.chunks_written == 0
    assert sorted(report.moved) == sorted(str(p.resolve()) for p in moved.rglob("*") if p.is_file())
    assert (report.documents, report.chunks) == (first.documents, first.chunks)
    hit = index.search("docs", "Ides of March assassination", k=1)[0]
    assert hit.source == str((moved / "rome.md").resolve()) and hit.chunk_id.endswith(f"-{hit.chunk:06d}")
    assert index.ingest("docs", [moved]).unchanged and index.ingest("docs", [moved]).moved == []


def test_files_deleted_from_an_ingested_folder_are_removed(index: DocumentIndex, corpus: Path) -> None:
    first = index.ingest("docs", [corpus])
    (corpus / "plants" / "roots.txt").unlink()
    only_etna = index.ingest("docs", [corpus / "etna.md"])  # a file, not the folder: nothing is removed
    assert only_etna.removed == [] and only_etna.chunks == first.chunks

    report = index.ingest("docs", [corpus])
    assert report.removed == [str((corpus / "plants" / "roots.txt").resolve())]
    assert report.documents == first.documents - 1 and report.chunks == first.chunks - 1
    assert all(Path(h.source).name != "roots.txt" for h in index.search("docs", "roots absorb minerals", k=10))


def test_bad_files_are_skipped_and_the_rest_indexed(index: DocumentIndex, corpus: Path) -> None:
    index.ingest("docs", [corpus])
    (corpus / "latin1.txt").write_bytes("caf\xe9 au lait".encode("latin-1"))
    (corpus / "fake.pdf").write_bytes(b"this is not a pdf at all")
    (corpus / "picture.png").write_bytes(b"\x89PNG\r\n")
    (corpus / "empty.md").write_text("   \n")
    (corpus / ".git").mkdir()
    (corpus / ".git" / "notes.md").write_text("hidden folders are not indexed")
    (corpus / "new.md").write_text("# Glaciers\n\nGlaciers are slowly moving masses of ice.\n")
    # A file indexed before that is now corrupt keeps its old chunks.
    (corpus / "eiffel.txt").write_bytes(b"The tower \xff\xfe is broken now")

    report = index.ingest("docs", [corpus, corpus / "missing.md"])
    reasons = {Path(p.path).name: p.reason for p in report.skipped}
    assert set(reasons) == {"latin1.txt", "fake.pdf", "picture.png", "empty.md", "eiffel.txt", "missing.md"}
    assert "UTF-8" in reasons["latin1.txt"] and "PDF" in reasons["fake.pdf"]
    assert "unsupported" in reasons["picture.png"] and "no text" in reasons["empty.md"]
    assert "no such file" in reasons["missing.md"]
    assert report.added == [str(corpus / "new.md")] and report.documents == len(DOCS) + 1
    assert Path(index.search("docs", "Eiffel tower Paris 1889", k=1)[0].source).name == "eiffel.txt"
    assert Path(index.search("docs", "moving ice masses", k=1)[0].source).name == "new.md"


def test_hybrid_finds_exact_identifiers_that_vector_search_confuses(index: DocumentIndex, tmp_path: Path) -> None:
    root = tmp_path / "manual"
    root.mkdir()
    # Near-identical error pages that differ only in the code (lexical) plus topical pages (semantic).
    faults = {"E4021": "the paper tray is empty", "E4022": "the toner cartridge is low",
              "E4023": "the rear door is open", "E4024": "paper is jammed in the fuser"}
    for code, meaning in faults.items():
        (root / f"{code}.txt").write_text(f"Printer error {code} means that {meaning}. Fix it and restart.\n")
    (root / "cleaning.txt").write_text("Wipe the printer housing with a soft, slightly damp cloth once a month.\n")
    (root / "network.txt").write_text("To connect the printer to Wi-Fi, open Settings and choose Wireless setup.\n")
    index.ingest("manual", [root])
    queries = {f"What does error {code} mean?": f"{code}.txt" for code in faults}
    queries |= {"How should I clean the device?": "cleaning.txt", "How to join a wireless network?": "network.txt"}

    def found_in_top_2(mode: str) -> int:
        return sum(want in [Path(h.source).name for h in index.search("manual", q, k=2, mode=mode)]
                   for q, want in queries.items())

    vector, hybrid = found_in_top_2("vector"), found_in_top_2("hybrid")
    assert hybrid >= vector and hybrid == len(queries), (vector, hybrid)


def test_hybrid_is_at_least_as_good_as_vector_on_squad(index: DocumentIndex, tmp_path: Path) -> None:
    """SQuAD questions of the first six demo-corpus articles against all their paragraphs (one file each)."""
    corpus = Path(__file__).resolve().parents[2] / "docs" / "demo_corpus"
    articles = sorted((corpus / "articles").glob("*.md"))[:6]
    root = tmp_path / "squad"
    root.mkdir()
    for article in articles:
        heading, _, body = article.read_text(encoding="utf-8").partition("\n\n")
        for i, paragraph in enumerate(body.strip().split("\n\n")):
            (root / f"{article.stem}--{i}.md").write_text(f"{heading}\n\n{paragraph}\n", encoding="utf-8")
    questions = [q for q in map(json.loads, (corpus / "questions.jsonl").read_text(encoding="utf-8").splitlines())
                 if q["title"] in {a.stem for a in articles}]
    index.ingest("squad", [root])

    def recall(mode: str, k: int) -> int:
        return sum(f"{q['title']}--{q['paragraph']}.md" in
                   [Path(h.source).name for h in index.search("squad", q["question"], k=k, mode=mode)]
                   for q in questions)

    assert len(questions) > 50
    for k in (1, 3):
        assert recall("hybrid", k) >= recall("vector", k), k
    assert recall("hybrid", 3) >= 0.85 * len(questions)


def test_a_missing_full_text_index_is_rebuilt(index: DocumentIndex, corpus: Path) -> None:
    import lancedb

    index.ingest("docs", [corpus / "etna.md"])
    table = lancedb.connect(str(index.root)).open_table("docs")
    for fts in [i for i in table.list_indices() if i.index_type == "FTS"]:
        table.drop_index(fts.name)  # as if a process died between writing rows and indexing them
    assert not table.list_indices()
    reopened = DocumentIndex(index.root, index.embedder)
    assert Path(reopened.search("docs", "Sicily volcano", k=1, mode="fts")[0].source).name == "etna.md"


def test_collections_and_errors(index: DocumentIndex, corpus: Path) -> None:
    assert index.collections() == []
    index.ingest("a", [corpus / "etna.md"])
    index.ingest("b-2", [corpus / "plants"])
    info = {c.name: c for c in index.collections()}
    assert (info["a"].documents, info["a"].chunks) == (1, 1)
    assert info["b-2"].documents == 2 and info["b-2"].embedding_model == index.embedder.model_name
    with pytest.raises(DocumentIndexError, match="no collection 'c'"):
        index.search("c", "anything")
    with pytest.raises(DocumentIndexError, match="invalid collection name"):
        index.ingest("../escape", [corpus])
    with pytest.raises(DocumentIndexError, match="empty"):
        index.search("a", "   ")
    with pytest.raises(DocumentIndexError, match="mode"):
        index.search("a", "etna", mode="semantic")  # type: ignore[arg-type]
    # Quotes, brackets and operators in a query neither raise nor match everything: none of these words is
    # in the Etna article, so nothing is found; with some of its words, it is.
    assert index.search("a", "a \"quoted\" (query) with: AND OR * punctuation?", k=2, mode="fts") == []
    hits = index.search("a", "Etna: (active) \"volcano\" AND OR NOT * ~ ^ punctuation?", k=2, mode="fts")
    assert [Path(h.source).name for h in hits] == ["etna.md"]


def test_chunks_respect_size_overlap_and_paragraphs() -> None:
    chunks = chunk_text(ROME, size=300, overlap=80)
    assert len(chunks) > 3
    for prev, cur in zip(chunks, chunks[1:], strict=False):
        assert cur.start < prev.end, "consecutive chunks overlap"
        assert prev.end - cur.start <= 80
    for chunk in chunks:
        assert len(chunk.text) <= 300 and chunk.text == ROME[chunk.start:chunk.end]
        assert chunk.text == chunk.text.strip()
    # A paragraph break in the second half of the window is the preferred cut, else a sentence end.
    at_paragraph = [c for c in chunks[:-1] if "\n\n" in ROME[c.start + 150:c.start + 300]]
    assert at_paragraph and all(ROME[c.end:].lstrip(" ").startswith("\n\n") for c in at_paragraph)
    assert {c.text[-1] for c in chunks} <= {".", "?", "!"}
    assert chunks[-1].end == len(ROME)
    assert chunk_text("") == [] and [c.text for c in chunk_text("  one  ")] == ["one"]


def test_html_text_and_title() -> None:
    doc = extract(Path("page.html"), DOCS["mars.html"].encode())
    assert doc.title == "Planet Mars"
    assert doc.text.split("\n\n") == [
        "Mars", "Mars is the fourth planet from the Sun. Its red colour comes from iron oxide dust.",
        "Olympus Mons is the largest volcano in the Solar System.",
    ]


def test_identical_content_at_a_second_path_is_not_indexed_twice(tmp_path, index):
    first, second = tmp_path / "a", tmp_path / "b"
    for folder in (first, second):
        folder.mkdir()
        (folder / "note.md").write_text("# Note\n\nThe blue heron nests by the river in spring.\n")
    index.ingest("dups", [first])
    report = index.ingest("dups", [second])
    assert report.added == [] and report.skipped == [] and len(report.duplicates) == 1
    assert report.duplicates[0].reason == f"same content as the indexed {(first / 'note.md').resolve()}"
    assert report.documents == 1


def test_hits_carry_the_cosine_and_never_repeat_a_text(index: DocumentIndex, tmp_path: Path) -> None:
    shared = "# Heron\n\nThe blue heron nests by the river in spring and feeds on small fish."
    folder = tmp_path / "herons"
    folder.mkdir()
    (folder / "one.md").write_text(shared + "\n\nThe first copy ends with a note about otters.\n")
    (folder / "two.md").write_text(shared + "\n\nThe second copy ends with a note about kingfishers.\n")
    index.chunk_size, index.chunk_overlap = 90, 0  # the shared paragraph becomes a chunk of its own in both files
    index.ingest("birds", [folder])
    for mode in ("hybrid", "vector", "fts"):
        hits = index.search("birds", "Where does the blue heron nest?", k=4, mode=mode)
        texts = [h.text for h in hits]
        assert len(texts) == len(set(texts)) and any("nests by the river" in t for t in texts), (mode, texts)
    by_vector = {h.chunk_id: h.similarity for h in index.search("birds", "heron nests", k=4, mode="vector")}
    for hit in index.search("birds", "heron nests", k=4, mode="hybrid"):
        assert hit.similarity == pytest.approx(by_vector[hit.chunk_id], abs=1e-4)
    assert all(h.similarity is None for h in index.search("birds", "heron nests", k=2, mode="fts"))
