"""A local OTLP/HTTP trace receiver that accepts every export and keeps only counts.

``bench/observability.py`` points the "on" side's processes at it (``OTEL_EXPORTER_OTLP_ENDPOINT``),
so their spans take the real exporter path (batching, protobuf encoding, an HTTP POST) to a
receiver that never fails and never slows them down. ``GET /stats`` answers the exports, bytes
and spans received, so the benchmark can tell that tracing was really on.

Run: ``python bench/otlp_sink.py --port 4318``.
"""

from __future__ import annotations

import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

# The OTLP exporter's own protobuf classes (a dependency of it): count spans, not only requests.
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest


def span_count(body: bytes) -> int:
    """Spans in one protobuf export (0 if it cannot be read)."""
    request = ExportTraceServiceRequest()
    try:
        request.ParseFromString(body)
    except Exception:
        return 0
    return sum(len(scope.spans) for resource in request.resource_spans for scope in resource.scope_spans)


class SinkHandler(BaseHTTPRequestHandler):
    """POST anything: 200 with an empty export response; GET /stats: the counts."""

    counts: ClassVar[dict[str, int]] = {"exports": 0, "bytes": 0, "spans": 0}
    lock: ClassVar[threading.Lock] = threading.Lock()
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        spans = span_count(body) if self.path.endswith("/v1/traces") else 0
        with self.lock:
            self.counts["exports"] += 1
            self.counts["bytes"] += len(body)
            self.counts["spans"] += spans
        self._answer(b"", "application/x-protobuf")

    def do_GET(self) -> None:
        with self.lock:
            body = json.dumps(self.counts).encode()
        self._answer(body, "application/json")

    def _answer(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """No access log: it would cost more than the export."""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench/otlp_sink.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4318)
    args = parser.parse_args(argv)
    ThreadingHTTPServer((args.host, args.port), SinkHandler).serve_forever()


if __name__ == "__main__":
    main()
