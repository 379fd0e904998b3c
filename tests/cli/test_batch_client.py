"""Where `switchyard batch submit --wait` puts its files, and the query it sends."""

from __future__ import annotations

from pathlib import Path

from cli.batch_client import BatchOptions, default_output_path, errors_path_for


def test_the_output_goes_beside_the_input_and_the_errors_beside_the_output() -> None:
    output = default_output_path(Path("runs/docs.jsonl"))
    assert output == Path("runs/docs.output.jsonl")
    assert errors_path_for(output) == Path("runs/docs.errors.jsonl")
    assert errors_path_for(Path("out/summaries.jsonl")) == Path("out/summaries.errors.jsonl")
    assert errors_path_for(Path("plain")) == Path("plain.errors.jsonl")


def test_only_the_options_given_become_query_parameters() -> None:
    assert BatchOptions().params() == {}
    given = BatchOptions("local", "24h", "https://example.com/hook", skip_invalid_lines=True).params()
    assert given == {
        "tier": "local",
        "completion_window": "24h",
        "callback_url": "https://example.com/hook",
        "skip_invalid_lines": "true",
    }
