"""The provider registry: adapter classes by ``kind``, and the live adapters of a process."""

from __future__ import annotations

import importlib
import threading
from typing import Any

from schemas.settings import ProviderConfig, Settings
from workers.providers.base import AdapterTraits, Provider

# kind -> "module:Class"; imported on first use so a worker loads torch only if it runs a
# local model.
ADAPTERS: dict[str, str] = {
    "openai": "workers.providers.openai_compat:OpenAICompatibleProvider",
    "local": "workers.providers.local:LocalProvider",
}


def adapter_class(kind: str) -> Any:
    """The adapter class registered for ``kind``."""
    module_name, _, class_name = ADAPTERS[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def adapter_traits(kind: str) -> AdapterTraits:
    """What the adapter registered for ``kind`` can do (its class's ``traits``)."""
    traits: AdapterTraits = adapter_class(kind).traits
    return traits


class ProviderRegistry:
    """One adapter instance per configured provider, built lazily, once even under threads."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._instances: dict[str, Provider] = {}
        # A threads-pool worker's tasks share one adapter, and so one batch collector per model.
        self._lock = threading.Lock()

    def get(self, name: str) -> Provider:
        """The adapter serving provider ``name``."""
        with self._lock:
            if name not in self._instances:
                config: ProviderConfig = self._settings.providers[name]
                self._instances[name] = adapter_class(config.kind)(config, self._settings)
            return self._instances[name]

    def close(self) -> None:
        """Close every adapter that was built."""
        for provider in self._instances.values():
            provider.close()
        self._instances.clear()
