"""The provider's Files and Batches endpoints through the official ``openai`` SDK.

Every SDK error becomes the typed provider error the live adapter raises (``map_error``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import openai

from schemas import errors
from schemas.settings import ProviderConfig
from workers.providers.openai_compat import map_error

# The metadata key that tags a provider batch with our provider_batches row id, so a send
# interrupted after batches.create can find the batch instead of creating a second one.
TAG = "switchyard_provider_batch"
FINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class RemoteBatch:
    """What Switchyard reads of a provider's batch object."""

    id: str
    status: str
    output_file_id: str | None = None
    error_file_id: str | None = None
    tag: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES


def _remote(batch: Any) -> RemoteBatch:
    metadata = batch.metadata or {}
    return RemoteBatch(batch.id, batch.status, batch.output_file_id, batch.error_file_id, metadata.get(TAG))


class BatchClient:
    """One provider's Batch API."""

    def __init__(self, config: ProviderConfig) -> None:
        self._sdk = openai.OpenAI(
            base_url=config.base_url,
            api_key=config.api_key.get_secret_value(),
            timeout=config.timeout_s,
            max_retries=0,
        )

    def upload(self, filename: str, data: bytes) -> str:
        """Upload a batch input file; its id."""
        return self._call(lambda: self._sdk.files.create(file=(filename, data), purpose="batch")).id

    def create(self, input_file_id: str, endpoint: str, tag: str) -> RemoteBatch:
        """Start a batch over an uploaded file, tagged with our row id."""
        batch = self._call(
            lambda: self._sdk.batches.create(
                input_file_id=input_file_id,
                endpoint=endpoint,  # type: ignore[arg-type]
                completion_window="24h",
                metadata={TAG: tag},
            )
        )
        return _remote(batch)

    def retrieve(self, batch_id: str) -> RemoteBatch:
        """The provider's batch now."""
        return _remote(self._call(lambda: self._sdk.batches.retrieve(batch_id)))

    def find_tagged(self, tag: str, pages: int = 5) -> RemoteBatch | None:
        """A recent batch tagged ``tag``, if an earlier send created one (newest 500 looked at)."""
        after: str | None = None
        for _ in range(pages):
            page = self._call(
                lambda after=after: self._sdk.batches.list(limit=100, **({"after": after} if after else {}))
            )
            for batch in page.data:
                remote = _remote(batch)
                if remote.tag == tag:
                    return remote
            if not page.has_more or not page.data:
                return None
            after = page.data[-1].id
        return None

    def content(self, file_id: str) -> bytes:
        """A file's bytes (an output or error file)."""
        return self._call(lambda: self._sdk.files.content(file_id)).content

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._sdk.close()

    @staticmethod
    def _call(request: Any) -> Any:
        try:
            return request()
        except openai.OpenAIError as exc:
            raise map_error(exc) from exc
        except ValueError as exc:  # a body that is not JSON
            raise errors.InvalidOutput("The provider answered a body that is not JSON.") from exc


class BatchClients:
    """Clients by provider name, built on first use and closed together."""

    def __init__(self, providers: dict[str, ProviderConfig]) -> None:
        self._providers = providers
        self._clients: dict[str, BatchClient] = {}

    def get(self, provider: str) -> BatchClient:
        """The client of a configured provider (KeyError if it left the config)."""
        if provider not in self._clients:
            self._clients[provider] = BatchClient(self._providers[provider])
        return self._clients[provider]

    def close(self) -> None:
        """Close every client built."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
