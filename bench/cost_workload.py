"""The workload of ``bench/cost.py``: production-like chat traffic, generated from a fixed seed.

Each request is drawn in arrival order as one of five kinds (the target shares; the run
prints the shares it got):

- **repeat** (35 %): an earlier request sent again byte for byte (the seeds cite 30 to 40 %
  exact repeats). Its source is drawn uniformly from requests at least ``lag`` places
  earlier, so in the replay its answer has had time to come back.
- **paraphrase** (10 %): another wording of a question asked at least ``lag`` places earlier:
  the second text of a pair labelled "hit" (same meaning) in
  ``bench/data/semantic_eval/dev.jsonl``, whose first text was asked as an ordinary question.
- **easy** (25 %): classification (review sentiment), extraction (order number and date from
  a customer message) or a one-word answer; ``metadata.task`` says which (``classify``,
  ``extract``, ``short``), as a product service that knows its call would set it.
- **wait** (12 %): a support ticket summarised for a weekly report. It can wait a day:
  ``priority: "batch"``, ``completion_window: "24h"``, ``metadata.task = "report"``.
- **ordinary** (18 %, and every draw whose kind has no candidate yet): a question. Product,
  support and instruction questions carry the support assistant's system prompt; factual
  questions come bare, as from an internal tool. Their texts are the first texts of the
  development half's pairs (those labelled "hit" first, so their paraphrases can follow).

Every request sets ``max_tokens`` for what it asks (5 for a label, 300 for an answer), the
same on both sides of the benchmark. The test half of the evaluation set is never used here:
``bench/cost.py`` keeps it for ``wrong_cache_answers``.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import bench_paths

DEV_HALF = bench_paths.BENCH_DIR / "data" / "semantic_eval" / "dev.jsonl"
SHARES = {"repeat": 0.35, "paraphrase": 0.10, "easy": 0.25, "wait": 0.12, "ordinary": 0.18}
BARE_SOURCES = frozenset({"factual"})  # asked without the assistant's system prompt
SYSTEM_PROMPT = (
    "You are the support assistant of Northwind Cloud, a company that sells phone plans, "
    "broadband, cloud storage and smart-home devices to households and small businesses. "
    "Answer in plain language, in at most five sentences. If the question is about an "
    "account, explain the steps in the customer portal; never ask for passwords or card "
    "numbers; if you are not sure, say so and point to the help centre."
)
PRODUCTS = ("router", "phone plan", "cloud backup", "smart thermostat", "doorbell camera", "mesh Wi-Fi kit")
OPINIONS = (
    ("works perfectly and setup took five minutes", "positive"),
    ("stopped working after two days and support never answered", "negative"),
    ("does the job, nothing special", "neutral"),
    ("is far better than my old one, the app is great", "positive"),
    ("arrived damaged and the replacement took three weeks", "negative"),
    ("is fine, although the manual could be clearer", "neutral"),
)
CITIES = ("Leeds", "Lyon", "Porto", "Graz", "Turku", "Cork", "Ghent", "Bergen", "Brno", "Malmo")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September")
SHORT_QUESTIONS = (
    "Is {product} covered by the two-year warranty? Answer yes or no.",
    "Which colour is the {product} status light when it is offline? One word.",
    "Does the {product} need a subscription? Answer yes or no.",
    "How many days is the return window for the {product}? A number only.",
)
TICKET_ISSUES = (
    "intermittent disconnections every evening between 7 and 10 pm",
    "a double charge on the last invoice after a plan change",
    "a device that will not pair with the app after the latest update",
    "slow upload speeds since the move to the new address",
    "missing backups for three days with no error shown",
)


@dataclass(frozen=True)
class CostRequest:
    """One request of the workload: the job body Switchyard gets, and what kind it is."""

    index: int
    kind: str  # repeat, paraphrase, easy, wait, ordinary
    body: dict[str, Any]  # POST /v1/jobs body without tier and cache
    source: int | None = None  # the earlier request a repeat or paraphrase goes back to

    @property
    def request(self) -> dict[str, Any]:
        """The chat.completions body (messages, max_tokens), as the naive side sends it."""
        return dict(self.body["request"])


def question_body(text: str, source: str) -> dict[str, Any]:
    """An ordinary question: with the assistant's system prompt unless it is a bare factual one."""
    messages = [] if source in BARE_SOURCES else [{"role": "system", "content": SYSTEM_PROMPT}]
    messages.append({"role": "user", "content": text})
    return {"request": {"messages": messages, "max_tokens": 300}, "metadata": {"task": "answer"}}


def easy_body(rng: random.Random) -> dict[str, Any]:
    """A classification, extraction or one-word question, labelled by ``metadata.task``."""
    task = rng.choice(("classify", "extract", "short"))
    product = rng.choice(PRODUCTS)
    if task == "classify":
        opinion, _ = rng.choice(OPINIONS)
        weeks, city = rng.randrange(1, 13), rng.choice(CITIES)
        text = (
            "Classify the sentiment of this product review as positive, negative or neutral. "
            f'Reply with the label only.\nReview: "After {weeks} weeks in {city}, '
            f'my new {product} {opinion}."'
        )
        limit = 5
    elif task == "extract":
        order = rng.randrange(100_000, 999_999)
        day, month = rng.randrange(1, 29), rng.choice(MONTHS)
        text = (
            "Extract the order number and the order date from this message as JSON with the "
            f'keys "order" and "date".\nMessage: "Hi, I ordered a {product} on {day} {month} '
            f'(order #{order}) and it has not arrived yet. Can you check?"'
        )
        limit = 40
    else:
        model = f"{product} {rng.choice('ABCDEFGHJKLMNPRSTUVWXYZ')}{rng.randrange(10, 100)}"
        text = rng.choice(SHORT_QUESTIONS).format(product=model)
        limit = 10
    return {
        "request": {"messages": [{"role": "user", "content": text}], "max_tokens": limit},
        "metadata": {"task": task},
    }


def wait_body(rng: random.Random, number: int) -> dict[str, Any]:
    """A support ticket to summarise for a weekly report: it can wait a day."""
    product, issue = rng.choice(PRODUCTS), rng.choice(TICKET_ISSUES)
    ticket = (
        f"Ticket {number}. Customer on the {rng.choice(('Basic', 'Plus', 'Business'))} plan reports "
        f"{issue} with their {product}. First contact {rng.randrange(1, 28)} "
        f"{rng.choice(MONTHS)}; {rng.randrange(1, 6)} follow-ups. Agent notes: restarted the "
        "device, checked the line and the account, escalated to the second level once; the "
        "customer asked for a credit and was told it depends on the outcome of the investigation."
    )
    text = f"Summarise this support ticket in two sentences for the weekly quality report.\n\n{ticket}"
    return {
        "request": {"messages": [{"role": "user", "content": text}], "max_tokens": 120},
        "priority": "batch",
        "completion_window": "24h",
        "metadata": {"task": "report"},
    }


@dataclass
class QuestionPool:
    """The development half's first texts to ask, and the paraphrases their asking unlocks."""

    questions: list[tuple[str, str, str | None]]  # (text, source, its paraphrase if a hit pair)
    waiting: list[tuple[int, str, str]] = field(default_factory=list)  # (asked at, paraphrase, source)

    @classmethod
    def load(cls, rng: random.Random) -> QuestionPool:
        rows = [json.loads(line) for line in DEV_HALF.read_text(encoding="utf-8").splitlines() if line]
        hits = [(r["a"], r["source"], r["b"]) for r in rows if r["label"] == "hit"]
        others = [(r["a"], r["source"], None) for r in rows if r["label"] == "miss"]
        rng.shuffle(hits)
        rng.shuffle(others)
        return cls(list(dict.fromkeys(hits + others)))

    def ask(self, at: int) -> tuple[str, str] | None:
        """The next question (text, source), or None when the pool is used up."""
        if not self.questions:
            return None
        text, source, paraphrase = self.questions.pop(0)
        if paraphrase is not None:
            self.waiting.append((at, paraphrase, source))
        return text, source

    def paraphrase(self, at: int, lag: int) -> tuple[str, int, str] | None:
        """A paraphrase (text, index of its first wording, source) asked ``lag`` before ``at``."""
        for position, (asked, text, source) in enumerate(self.waiting):
            if asked <= at - lag:
                del self.waiting[position]
                return text, asked, source
        return None


def default_lag(count: int) -> int:
    """How far back a repeat or paraphrase reaches at least: ``count // 40``, at least 10.

    The replay sends waves of this many requests, so an earlier wave's answers are cached.
    """
    return max(10, count // 40)


def generate(count: int, seed: int = 20261208, lag: int | None = None) -> list[CostRequest]:
    """``count`` requests in arrival order; a repeat's source is at least ``lag`` places back."""
    rng = random.Random(seed)
    lag = lag if lag is not None else default_lag(count)
    pool = QuestionPool.load(rng)
    made: list[CostRequest] = []
    kinds, weights = list(SHARES), list(SHARES.values())
    for index in range(count):
        kind = rng.choices(kinds, weights)[0]
        made.append(draw(kind, index, lag, rng, pool, made) or ordinary(index, rng, pool))
    return made


def draw(
    kind: str, index: int, lag: int, rng: random.Random, pool: QuestionPool, made: list[CostRequest]
) -> CostRequest | None:
    """A request of ``kind`` at ``index``, or None if that kind has no candidate yet."""
    if kind == "repeat":
        if index < lag:
            return None
        source = rng.randrange(0, index - lag + 1)
        return CostRequest(index, "repeat", made[source].body, source)
    if kind == "paraphrase":
        found = pool.paraphrase(index, lag)
        if found is None:
            return None
        text, asked, source_kind = found
        return CostRequest(index, "paraphrase", question_body(text, source_kind), asked)
    if kind == "easy":
        return CostRequest(index, "easy", easy_body(rng))
    if kind == "wait":
        return CostRequest(index, "wait", wait_body(rng, index))
    return None


def ordinary(index: int, rng: random.Random, pool: QuestionPool) -> CostRequest:
    """An ordinary question; an easy one once the development half's questions are used up."""
    asked = pool.ask(index)
    if asked is None:
        return CostRequest(index, "easy", easy_body(rng))
    return CostRequest(index, "ordinary", question_body(*asked))


def exact_repeat_share(requests: list[CostRequest]) -> float:
    """The share of requests whose body was sent before, whatever their kind."""
    seen: set[str] = set()
    repeats = 0
    for request in requests:
        canonical = json.dumps(request.body, sort_keys=True)
        repeats += canonical in seen
        seen.add(canonical)
    return repeats / len(requests) if requests else 0.0


def shares(requests: list[CostRequest]) -> dict[str, float]:
    """The share of each kind in ``requests``."""
    counts = Counter(request.kind for request in requests)
    return {kind: counts[kind] / len(requests) for kind in SHARES}


def waves(requests: list[CostRequest], size: int) -> Iterator[list[CostRequest]]:
    """The requests in arrival waves of ``size``: the replay sends one wave at a time."""
    for start in range(0, len(requests), size):
        yield requests[start : start + size]
