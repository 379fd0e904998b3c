"""Worker-side batching, measured through the real code path: the local adapter's engine and collector.

**local_batch_speedup**: completion tokens per second of SmolLM2 on ``--local-jobs``
summarisation jobs (documents from ``examples/documents``, greedy, ``--local-max-tokens``
each), batched against unbatched in the same run. Batched: ``--local-batch`` threads (as the
threads worker has) call ``LocalProvider.complete``, each taking the next job when its last
one is answered, and the continuous-batching engine decodes up to ``--local-batch`` of them
together. Unbatched: the same adapter with ``max_batch_size = 1``, one job at a time, as a
one-process worker runs them. One at a time is slow, so the unbatched rate is measured on
every ``--local-batch // --local-sample``-th job (tokens/s is a rate; the sample has the same
prompts' mix). The sides alternate in rounds of ``--local-round`` jobs (default: one round of
all of them, as a batch of documents arrives); with several rounds a noisy neighbour slows
both alike. Both sides run with the engine's defaults (prefix cache, prefill precision).
**local_tokens_per_s** is the batched rate.

**embed_batch_speedup**: embedding jobs per second (``--embed-jobs`` jobs of one sentence each,
through ``LocalProvider.embed`` and MiniLM), up to ``--embed-batch`` jobs per forward pass
against one job per pass, alternating in rounds of ``--embed-batch`` jobs.

Model loading is outside the timings: each adapter answers one call before any clock starts.
Used by ``bench/batch.py``; runs alone as ``python bench/worker_batching.py``.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import bench_paths

from schemas.openai import ChatRequest, EmbeddingRequest
from schemas.settings import DEFAULT_CONFIG_FILE, ModelConfig, Settings, load_settings
from workers.providers.local import LocalProvider

DOCUMENTS = bench_paths.ROOT / "examples" / "documents"
DOCUMENT_CHARS = 400  # the opening of each document: prompts of about 110 tokens
TIMEOUT_S = 600.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """This module's options."""
    parser.add_argument("--local-jobs", type=int, default=64, help="summarisation jobs, batched")
    parser.add_argument("--local-max-tokens", type=int, default=48, help="tokens each summary may use")
    parser.add_argument("--local-batch", type=int, default=16, help="max_batch_size when batched")
    parser.add_argument("--local-sample", type=int, default=2, help="unbatched jobs per batch of jobs")
    parser.add_argument(
        "--local-round", type=int, default=64, help="jobs per round: the batched side gets them all at once"
    )
    parser.add_argument("--local-wait-ms", type=float, default=100, help="max_batch_wait_ms when batched")
    parser.add_argument("--embed-jobs", type=int, default=512, help="one-sentence embedding jobs per side")
    parser.add_argument("--embed-batch", type=int, default=64, help="max_batch_size when batched")


def summarisation_requests(count: int, max_tokens: int) -> list[ChatRequest]:
    """``count`` summarisation jobs over the example corpus, cycling through its documents."""
    paths = sorted(path for path in DOCUMENTS.iterdir() if path.is_file())
    requests = []
    for index in range(count):
        text = paths[index % len(paths)].read_text(encoding="utf-8")[:DOCUMENT_CHARS]
        prompt = f"Summarise this document in one sentence.\n\n{text}"
        requests.append(
            ChatRequest.model_validate(
                {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
            )
        )
    return requests


def adapter(settings: Settings, model: ModelConfig, batch_size: int, wait_ms: float) -> LocalProvider:
    """The adapter of ``model``'s provider, its collectors batching up to ``batch_size`` calls."""
    update = {"max_batch_size": batch_size, "max_batch_wait_ms": wait_ms}
    return LocalProvider(settings.providers[model.provider].model_copy(update=update), settings)


def started_pool(threads: int) -> ThreadPoolExecutor:
    """A pool whose threads already run, as a threads worker's do before jobs arrive."""
    pool = ThreadPoolExecutor(max_workers=threads)
    barrier = threading.Barrier(threads)
    list(pool.map(lambda _: barrier.wait(), range(threads)))
    return pool


def timed(
    call: Callable[[Any], Any], items: list[Any], pool: ThreadPoolExecutor | None
) -> tuple[list[Any], float]:
    """Every item's answer, one at a time or from the pool's threads at once, and the seconds it took."""
    started = time.perf_counter()
    answers = list(pool.map(call, items)) if pool is not None else [call(item) for item in items]
    return answers, time.perf_counter() - started


def local_batching(args: argparse.Namespace) -> dict[str, float]:
    """SmolLM2 tokens/s over summarisation jobs, batched against one at a time."""
    settings = load_settings(config_file=DEFAULT_CONFIG_FILE)
    model = settings.models["smollm2"]
    requests = summarisation_requests(args.local_jobs, args.local_max_tokens)
    sides = {
        "unbatched": adapter(settings, model, 1, 0),
        "batched": adapter(settings, model, args.local_batch, args.local_wait_ms),
    }
    for provider in sides.values():
        provider.complete(requests[0], model, TIMEOUT_S)  # loads the model off the clock
    tokens, seconds = dict.fromkeys(sides, 0.0), dict.fromkeys(sides, 0.0)
    step = max(1, args.local_batch // args.local_sample)
    pool = started_pool(args.local_batch)
    for start in range(0, len(requests), args.local_round):
        group = requests[start : start + args.local_round]
        for side, jobs, threads in (("batched", group, pool), ("unbatched", group[::step], None)):
            provider = sides[side]
            call = partial(provider.complete, model=model, timeout_s=TIMEOUT_S)
            answers, elapsed = timed(call, jobs, threads)
            tokens[side] += sum(answer.completion.usage.completion_tokens for answer in answers)
            seconds[side] += elapsed
    rates = {side: tokens[side] / seconds[side] for side in sides}
    for side, provider in sides.items():
        rate = f"{tokens[side]:.0f} tokens in {seconds[side]:.1f} s = {rates[side]:.1f} tokens/s"
        hits, runs = next(iter(provider.prefix_cache_tokens().values()))
        cached = f"prompt tokens from the prefix cache {hits}/{hits + runs}"
        print(f"local {side}: {rate}; joined together by size {provider.batch_sizes()}; {cached}")
        provider.close()
    speedup = rates["batched"] / rates["unbatched"]
    print(f"local batched is {speedup:.1f}x the tokens/s of unbatched (target >= 4)")
    return {
        "local_batch_speedup": round(speedup, 2),
        "local_tokens_per_s": round(rates["batched"], 1),
        "local_unbatched_tokens_per_s": round(rates["unbatched"], 1),
    }


def embed_batching(args: argparse.Namespace) -> dict[str, float]:
    """MiniLM embedding jobs per second, batched against one job per forward pass."""
    settings = load_settings(config_file=DEFAULT_CONFIG_FILE)
    model = settings.models["minilm"]
    requests = [
        EmbeddingRequest.model_validate(
            {"input": f"Document {index} reports on quarterly sales in region {index % 7}."}
        )
        for index in range(args.embed_jobs)
    ]
    sides = {
        "unbatched": adapter(settings, model, 1, 0),
        "batched": adapter(settings, model, args.embed_batch, 25),
    }
    for provider in sides.values():
        provider.embed(requests[0], model, TIMEOUT_S)  # loads MiniLM off the clock
    seconds = dict.fromkeys(sides, 0.0)
    pool = started_pool(args.embed_batch)
    for start in range(0, len(requests), args.embed_batch):
        group = requests[start : start + args.embed_batch]
        for side, threads in (("batched", pool), ("unbatched", None)):
            provider = sides[side]
            call = partial(provider.embed, model=model, timeout_s=TIMEOUT_S)
            answers, elapsed = timed(call, group, threads)
            if not all(len(answer.completion.data) == 1 for answer in answers):
                raise RuntimeError("an embedding job came back without its one vector")
            seconds[side] += elapsed
    rates = {side: len(requests) / seconds[side] for side in sides}
    for side, provider in sides.items():
        rate = f"{len(requests)} jobs in {seconds[side]:.2f} s = {rates[side]:.0f} jobs/s"
        print(f"embed {side}: {rate}; batches by size {provider.batch_sizes()}")
    speedup = rates["batched"] / rates["unbatched"]
    print(f"embed batched is {speedup:.1f}x the jobs/s of unbatched (target >= 4)")
    return {"embed_batch_speedup": round(speedup, 2), "embed_jobs_per_s": round(rates["batched"], 0)}


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench/worker_batching.py", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args()
    figures = {**local_batching(args), **embed_batching(args)}
    print(" ".join(f"{name}={value}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
