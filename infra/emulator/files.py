"""The emulator's files, in memory: batch inputs clients upload, and the output and error
files the emulator writes when a batch ends (routes in file_api.py).
"""

import time
import uuid
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StoredFile:
    """One file's bytes and the metadata OpenAI's file object shows."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int = field(default_factory=lambda: int(time.time()))

    def describe(self) -> dict[str, Any]:
        """The OpenAI ``file`` object."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": len(self.data),
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


class FileStore:
    """Every file of one emulator, by id."""

    def __init__(self) -> None:
        self.files: dict[str, StoredFile] = {}

    def add(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        """Store bytes under a new ``file-...`` id."""
        stored = StoredFile(f"file-{uuid.uuid4().hex[:24]}", filename, purpose, data)
        self.files[stored.id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """A file by id, or None."""
        return self.files.get(file_id)
