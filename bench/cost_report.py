"""The tables and the closing line of ``bench/cost.py``."""

from __future__ import annotations

from dataclasses import dataclass

from cost_checks import BudgetOutcome
from cost_sides import JobCosts, Replay, costs_by_kind
from cost_workload import CostRequest, exact_repeat_share, shares
from rich.console import Console
from rich.table import Table

TARGETS = {"cost_reduction": 0.6, "wrong_cache_answers": 0.01, "budget_overspend_calls": 1}


@dataclass
class Figures:
    """Everything one run measured."""

    requests: list[CostRequest]
    naive: list[float]  # each request's naive cost, in workload order
    replay: Replay
    jobs: JobCosts
    lookups: dict[str, tuple[int, int]]  # label -> (semantic hits, pairs)
    budget: BudgetOutcome
    threshold: float

    @property
    def naive_usd(self) -> float:
        return sum(self.naive)

    @property
    def switchyard_usd(self) -> float:
        return self.jobs.total_usd

    @property
    def wrong_cache_answers(self) -> float:
        hits, pairs = self.lookups["miss"]
        return hits / pairs if pairs else float("nan")


def kind_table(figures: Figures) -> Table:
    """Naive and Switchyard cost of each kind of request."""
    repeats = exact_repeat_share(figures.requests)
    title = f"Cost by kind of request ({len(figures.requests)} requests, {repeats:.1%} repeat an earlier one)"
    table = Table(title=title)
    for column in ("kind", "share", "naive USD", "Switchyard USD", "Switchyard/naive"):
        table.add_column(column, justify="right")
    naive_of = dict(zip((r.index for r in figures.requests), figures.naive, strict=True))
    rows = figures.jobs.rows
    ids = figures.replay.job_ids

    def switchyard_of(request: CostRequest) -> float:
        job_id = ids.get(request.index)
        return float(rows[job_id]["cost_usd"] or 0) if job_id in rows else 0.0

    naive = costs_by_kind(figures.requests, lambda r: naive_of[r.index])
    ours = costs_by_kind(figures.requests, switchyard_of)
    for kind, share in shares(figures.requests).items():
        count, naive_usd = naive.get(kind, (0, 0.0))
        ours_usd = ours.get(kind, (0, 0.0))[1]
        ratio = f"{ours_usd / naive_usd:.3f}" if naive_usd else "-"
        table.add_row(kind, f"{share:.1%} ({count})", f"{naive_usd:.4f}", f"{ours_usd:.4f}", ratio)
    return table


def path_table(figures: Figures) -> Table:
    """Where Switchyard's cost went: cache hits, models, the lane, shadow checks."""
    table = Table(title="Switchyard: where the cost goes (every job of the tenant, from the database)")
    for column in ("path", "jobs", "USD", "share of the cost"):
        table.add_column(column, justify="right")
    total = figures.switchyard_usd or 1.0
    for path, (jobs, usd) in figures.jobs.by_path(set(figures.replay.job_ids.values())).items():
        table.add_row(path, str(jobs), f"{usd:.4f}", f"{usd / total:.1%}")
    return table


def safety_lines(figures: Figures) -> list[str]:
    """The wrong-answer and budget figures in words."""
    miss_hits, misses = figures.lookups["miss"]
    hit_hits, hits = figures.lookups["hit"]
    budget = figures.budget
    lines = [
        f"semantic cache on the test half (threshold {figures.threshold}): {miss_hits}/{misses} pairs of "
        f"different meaning served the other's answer; {hit_hits}/{hits} paraphrases found",
    ]
    if budget.missing:
        lines.append(f"budget scenario not measured: {budget.missing}")
    else:
        lines.append(
            f"budget scenario: {budget.calls} provider calls for a budget worth 10 "
            f"(limit {budget.limit_usd:.6f} USD, spent {budget.spent_usd:.6f}); outcomes {budget.outcomes}"
        )
    return lines


def workload_semantic_hits(figures: Figures) -> list[str]:
    """The workload's semantic hits by kind of request, and the ones not from their first wording.

    A paraphrase's hit (or a repeat's of one) is expected from the job of the question it
    rewords; any other hit
    served an answer written for another text, which may or may not be right (printed so a
    reader can judge).
    """
    index_of = {job_id: index for index, job_id in figures.replay.job_ids.items()}
    by_index = {request.index: request for request in figures.requests}
    kinds: dict[str, int] = {}
    others: list[str] = []
    for job_id, row in figures.jobs.rows.items():
        cache = row["cache"] or {}
        if cache.get("hit") != "semantic" or job_id not in index_of:
            continue
        request = by_index[index_of[job_id]]
        kinds[request.kind] = kinds.get(request.kind, 0) + 1
        if cache.get("source_job") != figures.replay.job_ids.get(reworded(request, by_index), ""):
            source = by_index.get(index_of.get(str(cache.get("source_job")), -1))
            asked = request.request["messages"][-1]["content"]
            was = source.request["messages"][-1]["content"] if source else "?"
            others.append(f"  {asked[-90:]!r} <- {was[-90:]!r}")
    lines = [f"workload semantic hits by kind: {kinds}; not from the reworded question: {len(others)}"]
    return lines + others[:8]


def reworded(request: CostRequest, by_index: dict[int, CostRequest]) -> int:
    """The index of the question a paraphrase (or a repeat of one) rewords; -1 for none."""
    while request.kind == "repeat" and request.source is not None:
        request = by_index[request.source]
    return request.source if request.kind == "paraphrase" and request.source is not None else -1


def end_line(figures: Figures) -> str:
    naive, ours, count = figures.naive_usd, figures.switchyard_usd, len(figures.requests)
    overspend = "unmeasured" if figures.budget.missing else str(figures.budget.overspend_calls)
    return (
        f"cost_reduction={1 - ours / naive:.3f} cost_per_1k_naive={naive / count * 1000:.4f} "
        f"cost_per_1k_switchyard={ours / count * 1000:.4f} "
        f"wrong_cache_answers={figures.wrong_cache_answers:.4f} budget_overspend_calls={overspend}"
    )


def report(figures: Figures, console: Console) -> None:
    """Print the tables, the targets met or missed, and the closing line."""
    console.print(kind_table(figures))
    console.print(path_table(figures))
    replay = figures.replay
    console.print(
        f"submissions answered at once by the exact cache: {replay.answered_at_once}; "
        f"refused: {len(replay.refusals)}; job states: {figures.jobs.statuses()}"
    )
    for refusal in replay.refusals[:5]:
        console.print(f"  refused {refusal}")
    for line in [*workload_semantic_hits(figures), *safety_lines(figures)]:
        console.print(line)
    measured = {
        "cost_reduction": 1 - figures.switchyard_usd / figures.naive_usd,
        "wrong_cache_answers": figures.wrong_cache_answers,
        "budget_overspend_calls": float("nan") if figures.budget.missing else figures.budget.overspend_calls,
    }
    for name, target in TARGETS.items():
        met = measured[name] >= target if name == "cost_reduction" else measured[name] <= target
        console.print(f"  {'met' if met else 'MISSED'}: {name} {measured[name]:.4f} (target {target})")
    print(end_line(figures))
