"""Command line: `python -m infra.emulator --port 8090 --rpm 60 --latency-ms 200`."""

import argparse

from infra.emulator.server import serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the emulator's command-line options."""
    parser = argparse.ArgumentParser(prog="python -m infra.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--rpm", type=int, default=None, help="requests per window; none if unset")
    parser.add_argument("--tpm", type=int, default=None, help="tokens per window; none if unset")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0, help="random 500/503 share, 0..1")
    parser.add_argument("--window-s", type=float, default=60.0, help="rate-limit window length")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--batch-delay-s", type=float, default=0.5, help="how long a batch runs before it completes"
    )
    parser.add_argument(
        "--api-key", default=None, help="the one key /v1 calls must carry; default: any bearer key"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Run the emulator with options from the command line."""
    args = parse_args(argv)
    serve(
        args.host,
        args.port,
        args.rpm,
        args.tpm,
        args.latency_ms,
        args.fail_rate,
        args.window_s,
        args.seed,
        args.batch_delay_s,
        args.api_key,
    )


if __name__ == "__main__":
    main()
