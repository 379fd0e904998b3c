"""A folder of documents -> OpenAI Batch input lines, one chat request per document.

Each document fills a prompt template. Placeholders: ``{text}`` (the document's text),
``{name}`` (its file name) and ``{path}`` (its path relative to the folder, also the line's
``custom_id``). For a JSON document, ``{text}`` is its ``text``, ``body`` or ``content`` field,
after its ``title`` or ``subject`` when it has one; a JSON document with none of those fields
is given whole, pretty-printed.
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCUMENT_SUFFIXES = (".txt", ".md", ".json")
TEMPLATE_FIELDS = ("text", "name", "path")
TEXT_FIELDS = ("text", "body", "content")
HEADING_FIELDS = ("title", "subject")
CHAT_URL = "/v1/chat/completions"
# Instructions after the text: the small local model follows them better than instructions first.
DEFAULT_TEMPLATE = "{text}\n\nSummarise the text above in one sentence."


class BuildError(ValueError):
    """A folder, template or document that cannot become a batch; the message says why."""


@dataclass(frozen=True)
class Document:
    """One document of the folder: its path relative to the folder and its text."""

    path: str
    text: str

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def check_template(template: str) -> None:
    """Refuse a template with unknown or positional placeholders, or without ``{text}``."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(template) if field is not None]
    except ValueError as exc:
        raise BuildError(
            f"The template is not a valid format string: {exc}. Write braces as {{{{ }}}}."
        ) from exc
    unknown = sorted({field for field in fields if field not in TEMPLATE_FIELDS})
    if unknown:
        raise BuildError(
            f"Unknown template placeholder(s) {', '.join(unknown)}; use {{text}}, {{name}} or {{path}}."
        )
    if "text" not in fields:
        raise BuildError("The template must contain {text}, where each document's text goes.")


def json_text(raw: str, path: str) -> str:
    """The text a JSON document contributes to ``{text}``."""
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BuildError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        return json.dumps(value, indent=2, ensure_ascii=False)
    body = next((value[f] for f in TEXT_FIELDS if isinstance(value.get(f), str)), None)
    if body is None:
        return json.dumps(value, indent=2, ensure_ascii=False)
    heading = next((value[f] for f in HEADING_FIELDS if isinstance(value.get(f), str)), None)
    return f"{heading}\n\n{body}" if heading else str(body)


def read_documents(folder: Path) -> list[Document]:
    """Every .txt, .md and .json file under ``folder``, sorted by relative path."""
    if not folder.is_dir():
        raise BuildError(f"{folder} is not a folder of documents.")
    documents = []
    for file in sorted(folder.rglob("*")):
        if not file.is_file() or file.suffix.lower() not in DOCUMENT_SUFFIXES:
            continue
        path = file.relative_to(folder).as_posix()
        try:
            raw = file.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise BuildError(f"{path} is not UTF-8 text: {exc}") from exc
        text = json_text(raw, path) if file.suffix.lower() == ".json" else raw
        documents.append(Document(path, text.strip()))
    if not documents:
        raise BuildError(f"{folder} holds no {', '.join(DOCUMENT_SUFFIXES)} files.")
    return documents


def batch_line(document: Document, template: str, model: str, max_tokens: int | None) -> dict[str, Any]:
    """The OpenAI Batch input line asking ``model`` the template about ``document``."""
    prompt = template.format(text=document.text, name=document.name, path=document.path)
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    return {"custom_id": document.path, "method": "POST", "url": CHAT_URL, "body": body}


def build_lines(
    folder: Path, template: str, model: str, max_tokens: int | None = None
) -> list[dict[str, Any]]:
    """The batch lines for every document of ``folder``, in path order."""
    check_template(template)
    return [batch_line(document, template, model, max_tokens) for document in read_documents(folder)]


def write_jsonl(lines: Iterable[dict[str, Any]], out: Path) -> int:
    """Write ``lines`` as JSONL to ``out``; the number written."""
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    return count
