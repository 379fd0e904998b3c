"""A stand-in for a paid OpenAI-compatible provider: latency, rate limits with 429s, faults.

Modules: app (ASGI routes), calls (request parsing), provider (one call's path), limits
(RPM/TPM windows, one set per model), faults (scripted and random), content (replies,
embeddings, token counts), control (the /emulator API), server (uvicorn), files and
file_api (the Files endpoints), batches and batch_api (the Batch API, run in the background).
"""

from infra.emulator.app import create_app
from infra.emulator.provider import EmulatorConfig
from infra.emulator.server import serve

__all__ = ["EmulatorConfig", "create_app", "serve"]
