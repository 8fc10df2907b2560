"""`ponder serve`: parse, check, load the model once, serve until Ctrl-C.

Imports nothing from FastAPI or uvicorn until the command runs, so that `ponder --help` works
without the `serve` extra, and the command itself says how to install it.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from ponder.argtypes import THREADS_HELP, positive_int
from ponder.errors import UserError


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 0-65535 (0: any free port), got {value}")
    return value


def add_serve_commands(sub) -> None:
    s = sub.add_parser(
        "serve", help="an OpenAI-compatible reasoning server, streaming, with a live page at /"
    )
    s.add_argument("--model", help="model spec ($PONDER_MODEL or 'default'), loaded once")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--port", type=port_number, default=8000, help="default 8000; 0: any free port")
    s.add_argument(
        "--api-key",
        default=os.environ.get("PONDER_API_KEY"),
        help="require 'Authorization: Bearer KEY' on /v1/* (default $PONDER_API_KEY; unset: open)",
    )
    s.add_argument(
        "--max-concurrency",
        type=positive_int,
        default=4,
        help="requests in flight at once; more get 429 with Retry-After (default 4)",
    )
    s.add_argument(
        "--max-budget",
        type=positive_int,
        default=32768,
        help="cap on one request's total tokens, and its budget when it names none (default 32768)",
    )
    s.add_argument(
        "--max-body-bytes",
        type=positive_int,
        default=1 << 20,
        help="larger request bodies get 413 (default 1 MiB)",
    )
    s.add_argument(
        "--strategy",
        default="cot",
        help="strategy for requests whose model field names none (default cot)",
    )
    s.add_argument(
        "--policy",
        metavar="FILE",
        help="the operator's policy (plain text): every request's strategy runs inside the guard, "
        "which deliberates over it and the conversation first, then refuses or answers",
    )
    s.add_argument(
        "--corpus",
        metavar="DIR",
        help="a folder of documents: model=\"ponder/research\" answers with a cited report on it",
    )
    s.add_argument("--threads", type=positive_int, help=THREADS_HELP)
    s.add_argument(
        "--log-level",
        default="info",
        choices=("critical", "error", "warning", "info", "debug"),
    )
    s.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise UserError(
            "ponder serve needs FastAPI and uvicorn: pip install 'ponder[serve]'"
        ) from None
    from ponder.models import resolve
    from ponder.serve.app import create_app
    from ponder.serve.background import listen
    from ponder.serve.settings import ServeSettings

    try:
        settings = ServeSettings(
            default_strategy=args.strategy,
            api_key=args.api_key,
            max_concurrency=args.max_concurrency,
            max_budget=args.max_budget,
            max_body_bytes=args.max_body_bytes,
            policy=args.policy,
            corpus=os.path.abspath(os.path.expanduser(args.corpus)) if args.corpus else None,
        )
    except ValueError as e:
        raise UserError(str(e)) from None
    try:
        sock = listen(args.host, args.port)  # before the model loads: a busy port fails fast
    except OSError as e:
        raise UserError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}") from None
    try:
        model = resolve(args.model, threads=args.threads)
        host, port = sock.getsockname()[:2]
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        print(
            f"ponder serve: {model.name} on {url}/ (live page); OpenAI base URL {url}/v1"
            + ("; API key required" if settings.api_key else "")
            + (f"; every request guarded by the policy {settings.policy}" if settings.policy else "")
            + "; Ctrl-C stops",
            flush=True,
        )
        config = uvicorn.Config(
            create_app(model, settings),
            log_level=args.log_level,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        try:
            uvicorn.Server(config).run(sockets=[sock])
        except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it shut down on: a normal stop
            pass
        finally:
            asyncio.run(model.aclose())
        print("ponder serve: stopped", flush=True)
    finally:
        sock.close()
    return 0
