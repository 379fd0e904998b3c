"""`switchyard batch` and `switchyard demo` against a real API, workers and the emulator."""

from __future__ import annotations

import functools
import http.server
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_stack import MODEL_DIR, Stack
from tests_support import TEST_CONFIG
from typer.testing import CliRunner

from cli.batch_build import read_documents
from cli.main import app
from infra.launch import free_port

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "examples" / "documents"
runner = CliRunner()


def run_cli(*args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """``switchyard ARGS`` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        env={**os.environ, "COLUMNS": "200", **env}, capture_output=True, text=True, timeout=timeout,
        check=False, cwd=ROOT,
    )  # fmt: skip


def stack_env(e2e: Stack) -> dict[str, str]:
    return {"SWITCHYARD_API_URL": e2e.api_url, "SWITCHYARD_API_KEY": e2e.keys["a"]}


def chat_line(custom_id: str, content: str, model: str = "small") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 16}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def write_jsonl(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def created_id(stdout: str) -> str:
    found = re.search(r"created (batch_\w+)", stdout)
    assert found, stdout
    return found.group(1)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def wait_ended(e2e: Stack, batch_id: str, timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        batch = e2e.get(f"/v1/batches/{batch_id}", e2e.keys["a"]).json()
        if batch["status"] in ("completed", "failed", "cancelled", "expired"):
            return dict(batch)
        time.sleep(0.3)
    raise AssertionError(f"{batch_id} did not end in {timeout}s")


@pytest.mark.parametrize("command", ["build", "submit", "status", "output", "cancel", "list"])
def test_every_batch_command_explains_itself_with_help(command: str) -> None:
    result = runner.invoke(app, ["batch", command, "--help"])
    assert result.exit_code == 0, result.output
    assert len(result.output.split("Usage", 1)[1].strip()) > 40


def test_demo_explains_itself_with_help() -> None:
    result = runner.invoke(app, ["demo", "--help"])
    assert result.exit_code == 0 and "examples/documents" in result.output


def test_submit_wait_runs_the_corpus_and_writes_one_output_line_per_document_in_order(
    e2e: Stack, tmp_path: Path
) -> None:
    batch_file = tmp_path / "corpus.jsonl"
    built = run_cli("batch", "build", str(CORPUS), "--tier", "small", "--max-tokens", "24",
                    "--out", str(batch_file), env={})  # fmt: skip
    assert built.returncode == 0, built.stderr
    done = run_cli("batch", "submit", str(batch_file), "--wait", env=stack_env(e2e))
    assert done.returncode == 0, done.stderr
    output = tmp_path / "corpus.output.jsonl"
    documents = read_documents(CORPUS)
    assert f"{len(documents)} lines written to {output}" in " ".join(done.stdout.split())
    # The progress bar's last frame: everything finished, with throughput and ETA fields.
    total = len(documents)
    assert re.search(
        rf" {total}/{total} 100%  ETA 0:00:00\s+completed  ✓ {total} ✗ 0  \d+\.\d req/s", done.stdout
    )
    lines = read_jsonl(output)
    assert [line["custom_id"] for line in lines] == [document.path for document in documents]
    for line in lines:
        assert line["error"] is None and line["response"]["status_code"] == 200
        assert line["response"]["body"]["object"] == "chat.completion"
    assert not (tmp_path / "corpus.errors.jsonl").exists()

    batch_id = created_id(done.stdout)
    status = run_cli("batch", "status", batch_id, env=stack_env(e2e))
    assert status.returncode == 0 and f"{batch_id} on tier small" in status.stdout
    assert f"{total}/{total} 100%" in status.stdout and f"completed  ✓ {total} ✗ 0" in status.stdout
    printed = run_cli("batch", "output", batch_id, env=stack_env(e2e))
    assert printed.returncode == 0 and printed.stdout == output.read_text()
    as_json = run_cli("batch", "status", batch_id, "--json", env=stack_env(e2e))
    counts = json.loads(as_json.stdout)["request_counts"]
    assert counts == {"total": total, "completed": total, "failed": 0}
    listed = run_cli("batch", "list", env=stack_env(e2e))
    assert listed.returncode == 0
    assert re.search(rf"{batch_id}\s+completed\s+small\s+{total}/{total}\s+20\d\d-", listed.stdout), (
        listed.stdout
    )


def test_a_bad_jsonl_is_rejected_whole_with_each_bad_line_by_number(e2e: Stack, tmp_path: Path) -> None:
    bad = write_jsonl(
        tmp_path / "bad.jsonl",
        [chat_line("a", "1"), '{"custom_id": "b", "method": ', chat_line("a", "3"), chat_line("d", "4")],
    )
    done = run_cli("batch", "submit", str(bad), "--wait", env=stack_env(e2e))
    assert done.returncode == 1
    assert "422 invalid_batch_file" in done.stderr
    assert "line 2: invalid_json" in done.stderr
    assert "line 3: duplicate_custom_id" in done.stderr
    assert "line 1:" not in done.stderr and "line 4:" not in done.stderr
    assert not (tmp_path / "bad.output.jsonl").exists()


def test_skip_invalid_lines_runs_the_rest_and_writes_the_error_file(e2e: Stack, tmp_path: Path) -> None:
    lines = [chat_line("a", "one"), "not json", chat_line("c", "three")]
    mixed = write_jsonl(tmp_path / "mixed.jsonl", lines)
    output = tmp_path / "results" / "out.jsonl"
    done = run_cli("batch", "submit", str(mixed), "--wait", "--skip-invalid-lines", "--output", str(output),
                   env=stack_env(e2e))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 invalid line(s) skipped" in done.stdout and "line 2: invalid_json" in done.stdout
    assert [line["custom_id"] for line in read_jsonl(output)] == ["a", "c"]
    errors = read_jsonl(tmp_path / "results" / "out.errors.jsonl")
    assert len(errors) == 1 and errors[0]["error"]["code"] == "invalid_json"


def test_cancel_mid_batch_cancels_the_queued_lines(e2e: Stack, tmp_path: Path) -> None:
    # 40 lines of 2 s on a 2-process worker: queued lines are left even if starting the cancel
    # command takes seconds on a loaded machine.
    slow_calls = {"model": "emu-slow", "latency_ms": 2000, "responses": [], "mode": "sequence"}
    e2e.emulator("POST", "/emulator/faults", json=slow_calls)
    slow = write_jsonl(tmp_path / "slow.jsonl", [chat_line(f"s{n}", f"slow {n}", "slow") for n in range(40)])
    submitted = run_cli("batch", "submit", str(slow), env=stack_env(e2e))
    assert submitted.returncode == 0, submitted.stderr
    batch_id = created_id(submitted.stdout)
    assert f"switchyard batch status {batch_id}" in submitted.stdout
    canceled = run_cli("batch", "cancel", batch_id, env=stack_env(e2e))
    assert canceled.returncode == 0, canceled.stderr
    assert f"{batch_id} on tier slow" in canceled.stdout
    assert re.search(r"^(cancelling|cancelled)  ✓ \d+ ✗ 0", canceled.stdout, re.MULTILINE)
    ended = wait_ended(e2e, batch_id)
    counts = ended["counts"]
    assert ended["status"] == "cancelled"
    assert counts["canceled"] > 0 and counts["succeeded"] + counts["canceled"] == 40
    errors_file = tmp_path / "canceled.jsonl"
    saved = run_cli("batch", "output", batch_id, "--errors", "--out", str(errors_file), env=stack_env(e2e))
    assert saved.returncode == 0 and f"wrote {counts['canceled']} lines" in saved.stdout
    assert {line["error"]["code"] for line in read_jsonl(errors_file)} == {"batch_cancelled"}
    again = run_cli("batch", "cancel", batch_id, env=stack_env(e2e))
    assert again.returncode == 1 and "409 batch_not_cancelable" in again.stderr


def test_an_unknown_batch_is_a_404_with_its_code(e2e: Stack) -> None:
    done = run_cli("batch", "status", "batch_doesnotexist", env=stack_env(e2e))
    assert done.returncode == 1 and "404 not_found" in done.stderr


def test_a_missing_file_says_how_to_build_one(tmp_path: Path) -> None:
    done = run_cli("batch", "submit", str(tmp_path / "nope.jsonl"), env={"SWITCHYARD_API_KEY": "sy_x"})
    assert done.returncode == 1
    assert "does not exist" in done.stderr and "switchyard batch build FOLDER" in done.stderr


def test_an_api_that_is_down_says_to_start_it_with_make_run(tmp_path: Path) -> None:
    batch = write_jsonl(tmp_path / "one.jsonl", [chat_line("a", "one")])
    down = {"SWITCHYARD_API_URL": f"http://127.0.0.1:{free_port()}", "SWITCHYARD_API_KEY": "sy_x"}
    done = run_cli("batch", "submit", str(batch), "--wait", env=down)
    assert done.returncode == 1
    assert "Cannot reach the API" in done.stderr and "make run" in done.stderr


def test_demo_uses_a_running_api_and_prints_where_the_summaries_are(e2e: Stack, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("a.txt", "b.md"):
        (folder / name).write_text(f"Document {name} talks about trains and timetables.")
    env = {**stack_env(e2e), "SWITCHYARD_VAR_DIR": str(tmp_path / "var")}
    done = run_cli("demo", "--folder", str(folder), "--tier", "small", env=env)
    assert done.returncode == 0, done.stderr
    output = tmp_path / "var" / "demo" / "summaries.jsonl"
    assert f"using the API running at {e2e.api_url}" in done.stdout
    assert f"all 2 summaries: {output}" in " ".join(done.stdout.split())
    assert [line["custom_id"] for line in read_jsonl(output)] == ["a.txt", "b.md"]
    assert "Emulated answer to" in done.stdout  # the table of summaries


def demo_env(tmp_path: Path, redis_url: str, key_prefix: str, api_url: str) -> dict[str, str]:
    """The environment of a self-contained demo: its own var dir, database, key prefix and port."""
    return {
        "SWITCHYARD_CONFIG_FILE": str(TEST_CONFIG),
        "SWITCHYARD_VAR_DIR": str(tmp_path / "var"),
        "SWITCHYARD_DATABASE_URL": "",
        "SWITCHYARD_REDIS_URL": redis_url,
        "SWITCHYARD_KEY_PREFIX": key_prefix,
        "SWITCHYARD_API_URL": api_url,
        "SWITCHYARD_MODEL_DIR": str(MODEL_DIR),
        "SWITCHYARD_API_KEY": "",
    }


def test_demo_starts_the_stack_itself_and_stops_it_afterwards(e2e: Stack, tmp_path: Path) -> None:
    """The self-contained path of `make demo`: API, beat and a worker started, then stopped.

    It serves the `lanes` tier, which the shared stack's workers do not consume.
    """
    folder = tmp_path / "docs"
    folder.mkdir()
    for index in range(3):
        (folder / f"doc{index}.txt").write_text(f"Document {index} about the spring budget.")
    api_url = f"http://127.0.0.1:{free_port()}"
    env = {
        **demo_env(tmp_path, e2e.settings.redis_url, f"{e2e.settings.key_prefix}demo", api_url),
        "SWITCHYARD_PROVIDERS__EMULATOR__BASE_URL": f"{e2e.emulator_url}/v1",
    }
    done = run_cli("demo", "--folder", str(folder), "--tier", "lanes", env=env, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "starting Redis (if needed)" in done.stdout and "stopping what the demo started" in done.stdout
    assert [line["custom_id"] for line in read_jsonl(tmp_path / "var" / "demo" / "summaries.jsonl")] == [
        "doc0.txt", "doc1.txt", "doc2.txt"
    ]  # fmt: skip
    assert (tmp_path / "var" / "demo-key").exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api_url}/readyz", timeout=5)


def test_wait_with_a_timeout_stops_watching_exits_2_and_says_how_to_look_later(
    e2e: Stack, tmp_path: Path
) -> None:
    # 40 lines of 2 s on a 2-process worker: 40 s of work, so the batch surely runs past the
    # 1 s wait and still has queued lines when the cancel (a new process) arrives.
    slow_calls = {"model": "emu-slow", "latency_ms": 2000, "responses": [], "mode": "sequence"}
    e2e.emulator("POST", "/emulator/faults", json=slow_calls)
    slow = write_jsonl(tmp_path / "slow.jsonl", [chat_line(f"s{n}", f"wait {n}", "slow") for n in range(40)])
    done = run_cli("batch", "submit", str(slow), "--wait", "--timeout", "1", env=stack_env(e2e))
    batch_id = created_id(done.stdout)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{batch_id} is still in_progress; see it with: switchyard batch status {batch_id}" in done.stdout
    assert not (tmp_path / "slow.output.jsonl").exists()
    cancelled = run_cli("batch", "cancel", batch_id, env=stack_env(e2e))
    assert cancelled.returncode == 0, cancelled.stderr
    assert wait_ended(e2e, batch_id)["status"] == "cancelled"


def test_a_server_that_is_not_switchyard_gets_a_clear_message_not_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "v1" / "batches").mkdir(parents=True)
    (tmp_path / "v1" / "batches" / "batch_here").write_text("<html>a web page</html>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {"SWITCHYARD_API_URL": f"http://127.0.0.1:{server.server_address[1]}", "SWITCHYARD_API_KEY": "sy_x"}
    try:
        page = run_cli("batch", "status", "batch_here", env=env)
        missing = run_cli("batch", "status", "batch_gone", env=env)
    finally:
        server.shutdown()
        server.server_close()
    assert page.returncode == 1 and "did not answer with a JSON object" in page.stderr
    assert "Traceback" not in page.stderr
    assert missing.returncode == 1 and "404 unexpected_answer" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_demo_on_a_port_another_server_holds_says_so_and_starts_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    requests: list[str] = []

    class Recording(http.server.SimpleHTTPRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            requests.append(self.requestline)

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Recording, directory=str(tmp_path))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    api_url = f"http://127.0.0.1:{server.server_address[1]}"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("A short note about the spring budget.")
    env = demo_env(tmp_path, redis_url, f"sytaken{free_port()}", api_url)
    try:
        done = run_cli("demo", "--folder", str(tmp_path / "docs"), "--tier", "lanes", env=env)
    finally:
        server.shutdown()
        server.server_close()
    message = " ".join(done.stderr.split())
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"The demo could not start the API at {api_url}: something else answers there" in message
    assert "Set SWITCHYARD_API_URL to a free port" in message and "Traceback" not in done.stderr
    # It stops before starting anything and submits nothing to the stranger.
    assert not (tmp_path / "var" / "demo" / "logs").exists()
    assert not any("POST" in line for line in requests)


def test_demo_whose_api_cannot_start_says_why_and_stops_what_it_started(
    tmp_path: Path, redis_url: str
) -> None:
    """A port held by something that does not speak HTTP: the demo's API fails to bind and exits."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    api_url = f"http://127.0.0.1:{holder.getsockname()[1]}"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("A short note about the spring budget.")
    env = demo_env(tmp_path, redis_url, f"sybind{free_port()}", api_url)
    try:
        done = run_cli("demo", "--folder", str(tmp_path / "docs"), "--tier", "lanes", env=env)
    finally:
        holder.close()
    message = " ".join(done.stderr.split())
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"The demo could not start the API at {api_url}: web exited with" in message
    assert "Traceback" not in done.stderr
    assert "stopping what the demo started" in done.stdout
    assert "address already in use" in (tmp_path / "var" / "demo" / "logs" / "web.log").read_text().lower()
