"""The `meshcore explain` subcommand: its arguments and what it prints."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from .request_line import ExplainOptions, RequestError


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"not a port: {value}")
    return value


def add_parser(commands: Any) -> None:
    """Adds `explain` to the `meshcore` subcommands."""
    p = commands.add_parser(
        "explain",
        help="show which listener, filter chain, route and cluster a request would get",
        description="Explains, without sending anything, what meshcore would do with one "
        "request: the data path's own matchers decide. Example: meshcore explain -c "
        "envoy.yaml 'GET http://api.example.com/v1/users' -H 'x-canary: 1'",
    )
    p.add_argument("-c", "--config-path", required=True, metavar="FILE", help="Envoy v3 YAML/JSON")
    p.add_argument("request", metavar="'METHOD URL'", help="e.g. 'GET http://host/path?q=1'")
    p.add_argument(
        "-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
        help="a request header (repeatable); 'host: X' overrides the URL's host",
    )  # fmt: skip
    p.add_argument("--listener", metavar="NAME", help="the listener (default: the first HTTP one)")
    p.add_argument("--port", type=_port, help="the listener with this configured port")
    p.add_argument("--sni", metavar="NAME", help="TLS server name the client sends (implies --tls)")
    p.add_argument(
        "--alpn", action="append", default=[], metavar="PROTO",
        help="an ALPN protocol the client offers (repeatable, in order; implies --tls)",
    )  # fmt: skip
    p.add_argument("--tls", action="store_true", help="the connection starts with a ClientHello")
    p.add_argument(
        "--source", metavar="IP:PORT", help="the client's address (default 127.0.0.1, port unknown)"
    )
    p.add_argument(
        "--random", type=int, metavar="N",
        help="show which weighted cluster the random value N picks (the proxy draws one per "
        "request)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true", help="machine-readable output")


def options(args: argparse.Namespace) -> ExplainOptions:
    return ExplainOptions(
        request=args.request,
        headers=args.header,
        listener=args.listener,
        port=args.port,
        sni=args.sni,
        alpn=args.alpn,
        tls=args.tls,
        source=args.source,
        random=args.random,
    )


def main(args: argparse.Namespace) -> int:
    """Loads the config as `meshcore run` does, explains, prints. 0: explained; 1: a config
    error; 2: a malformed request."""
    from meshcore.config import ConfigError, load_file

    from .render import render_text
    from .run import ExplainError, explain

    try:
        config = load_file(args.config_path)
    except OSError as exc:
        print(f"{args.config_path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    except ConfigError as exc:
        for problem in exc.problems:
            print(str(problem), file=sys.stderr)
        return 1
    try:
        data = explain(config.snapshot, options(args))
    except RequestError as exc:
        print(f"meshcore explain: {exc}", file=sys.stderr)
        return 2
    except ExplainError as exc:
        message = str(exc)
        print(message if message.startswith("config: ") else f"meshcore explain: {message}",
              file=sys.stderr)  # fmt: skip
        return 1 if message.startswith("config: ") else 2
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(render_text(data))
    return 0
