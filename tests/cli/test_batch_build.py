"""`switchyard batch build`: a folder of documents becomes valid OpenAI Batch input lines."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from tests_support import make_test_settings
from typer.testing import CliRunner

from api.batch_lines import LineReader
from cli.batch_build import BuildError, build_lines, check_template, json_text, read_documents
from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "examples" / "documents"
runner = CliRunner()


def write(folder: Path, name: str, text: str) -> None:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def test_the_example_corpus_has_at_least_50_documents_in_3_formats() -> None:
    formats = Counter(path.suffix for path in CORPUS.iterdir() if path.is_file())
    assert sum(formats.values()) >= 50
    assert {".txt", ".md", ".json"} <= set(formats)
    assert all(count >= 10 for count in formats.values()), formats
    assert sum(path.stat().st_size for path in CORPUS.iterdir()) < 500_000


def test_every_corpus_document_is_real_text_of_a_few_hundred_words_at_most() -> None:
    documents = read_documents(CORPUS)
    words = [len(document.text.split()) for document in documents]
    assert min(words) >= 50 and max(words) <= 400, (min(words), max(words))
    assert len({document.text for document in documents}) == len(documents)


def test_build_writes_one_line_per_document_with_unique_ids_and_the_template_applied(tmp_path: Path) -> None:
    out = tmp_path / "batch.jsonl"
    result = runner.invoke(
        app,
        ["batch", "build", str(CORPUS), "--template", "Summarise {name}: {text}", "--tier", "local",
         "--max-tokens", "48", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    documents = read_documents(CORPUS)
    assert f"wrote {len(documents)} lines" in result.output
    assert [line["custom_id"] for line in lines] == [document.path for document in documents]
    assert len({line["custom_id"] for line in lines}) == len(lines)
    for line, document in zip(lines, documents, strict=True):
        assert line["method"] == "POST" and line["url"] == "/v1/chat/completions"
        assert line["body"]["model"] == "local" and line["body"]["max_tokens"] == 48
        content = line["body"]["messages"][0]["content"]
        assert content == f"Summarise {document.name}: {document.text}"


def test_the_built_corpus_passes_the_apis_batch_validation(tmp_path: Path, redis_url: str) -> None:
    settings = make_test_settings(tmp_path, redis_url)
    lines = build_lines(CORPUS, "Summarise in one sentence: {text}", "local", 48)
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    parsed = LineReader(settings, "/v1/chat/completions", None, "immediate").read_jsonl(data)
    assert parsed.invalid == []
    assert parsed.tier == "local" and len(parsed.jobs) == len(read_documents(CORPUS))


def test_json_documents_give_heading_and_text_field_else_the_whole_json() -> None:
    ticket = json.dumps({"id": 7, "subject": "Broken export", "body": "The CSV is garbled."})
    assert json_text(ticket, "t.json") == "Broken export\n\nThe CSV is garbled."
    assert json_text(json.dumps({"content": "Only content"}), "c.json") == "Only content"
    assert json_text(json.dumps({"rating": 4}), "r.json") == '{\n  "rating": 4\n}'
    with pytest.raises(BuildError, match=r"bad\.json is not valid JSON"):
        json_text("{nope", "bad.json")


def test_folders_are_read_recursively_and_other_files_skipped(tmp_path: Path) -> None:
    write(tmp_path, "b.md", "# B")
    write(tmp_path, "sub/a.txt", "A text")
    write(tmp_path, "image.png", "not a document")
    assert [(d.path, d.name, d.text) for d in read_documents(tmp_path)] == [
        ("b.md", "b.md", "# B"),
        ("sub/a.txt", "a.txt", "A text"),
    ]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("Summarise {txt}", "Unknown template placeholder"),
        ("Summarise {0}", "Unknown template placeholder"),
        ("Summarise {text", "not a valid format string"),
        ("Summarise {name}", "must contain {text}"),
    ],
)
def test_a_bad_template_is_refused_with_what_to_write(template: str, message: str) -> None:
    with pytest.raises(BuildError, match=re.escape(message)):
        check_template(template)


def test_build_errors_exit_1_with_the_reason(tmp_path: Path) -> None:
    missing = runner.invoke(app, ["batch", "build", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "is not a folder of documents" in missing.output
    empty = runner.invoke(app, ["batch", "build", str(tmp_path), "--out", str(tmp_path / "x.jsonl")])
    assert empty.exit_code == 1 and "holds no .txt, .md, .json files" in empty.output
    out = tmp_path / "never.jsonl"
    bad = runner.invoke(app, ["batch", "build", str(CORPUS), "--template", "{body}", "--out", str(out)])
    assert bad.exit_code == 1 and "Unknown template placeholder(s) body" in bad.output
    assert not out.exists()
