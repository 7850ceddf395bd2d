"""The `meshcore` command: run, validate, demo, top and explain (Envoy's flags where Envoy
has one)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from meshcore import __version__
from meshcore.lifecycle import log_setup
from meshcore.lifecycle.drain_time import DEFAULT_DRAIN_TIME_S
from meshcore.lifecycle.interfaces import EngineApi


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return value


def _interval(text: str) -> float:
    value = float(text)
    # The admin reuses a summary for 0.5 s (admin/summary.py SummaryCache).
    if not value >= 0.5:
        raise argparse.ArgumentTypeError(f"must be at least 0.5 (seconds), got {text}")
    return value


def _log_level(text: str) -> str:
    try:
        log_setup.level_value(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.lower()


def _add_serving_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=os.cpu_count() or 1,
        help="worker threads (default: the number of CPUs, as Envoy)",
    )
    parser.add_argument(
        "-l",
        "--log-level",
        type=_log_level,
        default="info",
        help="trace, debug, info (default), warning, error, critical or off",
    )
    parser.add_argument(
        "--drain-time-s",
        type=_non_negative_float,
        default=DEFAULT_DRAIN_TIME_S,
        help="how long a drain (SIGTERM) waits for open connections (default: "
        f"{DEFAULT_DRAIN_TIME_S:g} s, to fit a sidecar's shutdown into Kubernetes' 30 s grace "
        "period; Envoy's is 600 s)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="meshcore",
        description="A service-mesh sidecar proxy configured with Envoy v3 YAML.",
    )
    parser.add_argument("--version", action="version", version=f"meshcore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="serve a configuration until SIGTERM/SIGINT")
    run.add_argument(
        "-c", "--config-path", required=True, metavar="FILE", help="Envoy v3 YAML/JSON"
    )
    _add_serving_options(run)
    run.add_argument(
        "--admin-address-path",
        metavar="FILE",
        default=None,
        help="write the admin server's bound address (e.g. 127.0.0.1:9901) to FILE",
    )

    validate = commands.add_parser("validate", help="check a configuration and exit")
    validate.add_argument("-c", "--config-path", required=True, metavar="FILE")

    demo = commands.add_parser("demo", help="run a self-contained canary-routing demo")
    demo.add_argument("--port", type=_port, default=10000, help="main listener (default 10000)")
    demo.add_argument("--admin-port", type=_port, default=9901, help="admin (default 9901)")
    _add_serving_options(demo)

    top = commands.add_parser(
        "top", help="live view of a running proxy's busiest connection managers and clusters"
    )
    top.add_argument("--admin", default="127.0.0.1:9901", metavar="HOST:PORT", help="admin address")
    top.add_argument(
        "--interval", type=_interval, default=1.0, metavar="S", help="seconds between polls"
    )
    top.add_argument(
        "--once", action="store_true", help="print one frame (rates over --interval) and exit"
    )
    top.add_argument(
        "--limit", type=_positive_int, default=None, metavar="N",
        help="clusters shown (default: what fits the terminal; 20 with --once)",
    )  # fmt: skip
    from meshcore.explain.command import add_parser as add_explain

    add_explain(commands)
    return parser


def _validate(path: str) -> int:
    from meshcore.config import validate_file

    try:
        problems = validate_file(path)
    except OSError as exc:
        print(f"{path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if problems:
        for problem in problems:
            print(str(problem), file=sys.stderr)
        return 1
    print(f"configuration '{path}' OK")
    return 0


def _engine(concurrency: int) -> EngineApi:
    """The Rust engine, imported only once a config has loaded."""
    from meshcore._fastpath import Engine

    return Engine(concurrency)


def _run(args: argparse.Namespace) -> int:
    import trio

    from meshcore import app
    from meshcore.config.isolated import load_file_isolated
    from meshcore.lifecycle.state import ServerOptions

    options = ServerOptions(
        config_path=args.config_path,
        concurrency=args.concurrency,
        log_level=args.log_level,
        drain_time_s=args.drain_time_s,
        admin_address_path=args.admin_address_path,
    )
    path = args.config_path
    return trio.run(app.run, options, lambda: load_file_isolated(path), _engine)


def _demo(args: argparse.Namespace) -> int:
    import trio

    from meshcore import app, demo
    from meshcore.config.isolated import load_text_isolated
    from meshcore.lifecycle.state import ServerOptions

    text = demo.demo_yaml(
        args.port, args.admin_port, {name: demo.free_port() for name in demo.UPSTREAMS}
    )
    options = ServerOptions(
        config_path="<meshcore demo>",
        concurrency=args.concurrency,
        log_level=args.log_level,
        drain_time_s=args.drain_time_s,
    )
    return trio.run(
        lambda: app.run(
            options, lambda: load_text_isolated(text), _engine, on_ready=demo.print_instructions
        )
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "validate":
        return _validate(args.config_path)
    if args.command == "top":
        from meshcore.top.screen import run

        return run(args.admin, args.interval, args.once, args.limit)
    if args.command == "explain":
        from meshcore.explain.command import main as explain_main

        return explain_main(args)
    log_setup.configure(args.log_level)
    try:
        return _run(args) if args.command == "run" else _demo(args)
    except KeyboardInterrupt:
        # Ctrl-C before the signal handlers were installed (while loading the config).
        return 130
