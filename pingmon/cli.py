"""The command line: run, check, config validate|schema, demo, --version."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from pingmon import __version__
from pingmon.config import DEFAULT_CONFIG_PATH, Config, json_schema, load_config, split_listen
from pingmon.deadline import any_running
from pingmon.errors import ConfigError
from pingmon.eventloop import (
    CHOICES as EVENT_LOOPS,
    ENV_VAR as EVENT_LOOP_ENV,
    EventLoopError,
    choose as choose_loop,
    run as run_on_loop,
)
from pingmon.logs import mask_secrets, setup_logging
from pingmon.sharding import DIGITS, MAX_SHARDS, ShardBy
from pingmon.standby import start_refused
from pingmon.watch import FileWatch
from pingmon.webconfig import WebOptions, load_web_config

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_INTERRUPTED = 0, 1, 2, 130

log = logging.getLogger("pingmon")


class UsageError(Exception):
    """The files or flags ``run`` and ``config validate`` were given were refused."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("; ".join(lines))
        self._lines = lines

    def lines(self) -> list[str]:
        return self._lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pingmon",
        description="Provider-aware health checks for SaaS APIs, as Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"pingmon {__version__}")
    parser.add_argument("--log-format", choices=("json", "text"), default="json")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"),
                        default="info")  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the daemon")
    _config_option(run)
    run.add_argument("--web.listen-address", dest="listen_address", metavar="HOST:PORT",
                     help="address of the HTTP server (overrides listen in the file)")  # fmt: skip
    _web_config_option(run)
    run.add_argument("--web.enable-lifecycle", dest="enable_lifecycle", action="store_true",
                     help="let POST /-/reload reload (SIGHUP always does)")  # fmt: skip
    run.add_argument(
        "--config.allow-invalid-at-start",
        dest="allow_invalid",
        action="store_true",
        help="start even when the file is refused: no targets, /metrics with "
        "pingmon_config_last_reload_successful 0 and /-/ready 503 until the fixed file is "
        "reloaded (a sidecar that must not crash-loop)",
    )
    _event_loop_option(run)
    check = commands.add_parser("check", help="check targets once; exit 1 if any failed")
    _config_option(check)
    _event_loop_option(check)
    check.add_argument("--target", action="append", default=[], metavar="NAME",
                       help="check only this target (repeatable)")  # fmt: skip
    check.add_argument("--json", action="store_true", help="print a JSON array")

    config = commands.add_parser("config", help="validate the file or print its JSON Schema")
    config_commands = config.add_subparsers(dest="config_command", required=True)
    validate = config_commands.add_parser("validate", help="validate a configuration")
    _config_option(validate)
    _web_config_option(validate)
    validate.add_argument(
        "--shards",
        type=_positive,
        metavar="N",
        help="print the targets and credentials each of N shards would hold",
    )
    validate.add_argument(
        "--by",
        choices=("credential", "target"),
        help="with --shards: place targets by this (default: the file's)",
    )
    config_commands.add_parser("schema", help="print the configuration's JSON Schema")

    demo = commands.add_parser("demo", help="run against a local sandbox of fake providers")
    demo.add_argument("--listen", default="127.0.0.1:9108", help="pingmon's address")
    _event_loop_option(demo)
    return parser


def _event_loop_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--event-loop",
        dest="event_loop",
        choices=EVENT_LOOPS,
        help=f"auto, uvloop, or asyncio: auto is uvloop where it is installed (env "
        f"{EVENT_LOOP_ENV}; default auto)",
    )


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "--config.file",
        dest="config",
        default=os.environ.get("PINGMON_CONFIG", DEFAULT_CONFIG_PATH),
        help=f"configuration file (env PINGMON_CONFIG; default {DEFAULT_CONFIG_PATH})",
    )


def _positive(text: str) -> int:
    if not DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_SHARDS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_SHARDS}")
    return int(text)


def _web_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="exporter-toolkit web configuration: TLS, basic auth, response headers",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """The command line's exit status. Run as the command (``argv`` None: the ``pingmon``
    script, ``python -m pingmon``), it leaves at once, without the interpreter's
    finalization, while a thread of a given-up load still runs (``leave_now``)."""
    status = _main(argv)
    if argv is None and any_running():
        leave_now(status)
    return status


def leave_now(status: int) -> NoReturn:
    """Flush the logs and standard streams, then end the process with ``status`` without
    finalizing the interpreter: finalization would end a given-up load's thread with
    ``pthread_exit``, which crashes the process from inside pydantic-core
    (``pingmon.deadline.any_running``), turning a clean stop into SIGABRT or SIGSEGV."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_format, args.log_level)
    try:
        return _dispatch(args)
    except (ConfigError, UsageError, EventLoopError) as error:
        for line in error.lines():
            print(line, file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:  # Ctrl-C during `check`; `run` and `demo` handle SIGINT themselves
        return EXIT_INTERRUPTED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "config" and args.config_command == "schema":
        print(json.dumps(json_schema(), indent=2))
        return EXIT_OK
    loop = "" if args.command == "config" else choose_loop(args.event_loop)
    if args.command == "demo":
        from pingmon.demo import run_demo

        return run_demo(args.listen, loop)
    if args.command == "check":
        return _check(_load(args.config, masked=True), args.target, args.json, loop)
    # Before loading: a change to the file while the daemon starts is then seen as one.
    first_look = FileWatch([args.config]) if args.command == "run" else None
    config, web = _load_all(args)
    if args.command == "config":
        print(f"{config.source}: ok ({len(config.settings.providers)} providers, "
              f"{len(config.targets)} targets)")  # fmt: skip
        if web.config is not None:
            print(f"{web.config.source}: ok")
        if args.shards is not None:
            _print_assignment(config, args.shards, args.by)
        return EXIT_OK
    return _run(config, web, first_look, loop)


def _load(path: str, masked: bool, allow_invalid: bool = False) -> Config:
    try:
        config = load_config(path)
    except ConfigError as error:
        if not allow_invalid:
            raise
        return start_refused(error)
    if masked:
        from pingmon.runner import config_redactor

        mask_secrets(config_redactor(config))
    for warning in config.warnings:
        log.warning(warning)
    return config


def _load_all(args: argparse.Namespace) -> tuple[Config, WebOptions]:
    """The configuration and the web options, every problem of both refused at once."""
    lines: list[str] = []
    config = web = None
    listen = getattr(args, "listen_address", None)
    try:
        config = _load(
            args.config,
            masked=args.command != "run",  # run: the daemon masks
            allow_invalid=getattr(args, "allow_invalid", False),
        )
    except ConfigError as error:
        lines += error.lines()
    if listen is not None:
        try:
            split_listen(listen)
        except ValueError as error:
            lines.append(f"--web.listen-address: {error}")
    try:
        web = None if args.web_config_file is None else load_web_config(args.web_config_file)
    except ConfigError as error:
        lines += error.lines()
    if lines or config is None:
        raise UsageError(lines)
    lifecycle = getattr(args, "enable_lifecycle", False)
    return config, WebOptions(listen_address=listen, config=web, enable_lifecycle=lifecycle)


def _check(config: Config, names: list[str], as_json: bool, loop: str) -> int:
    from pingmon.oneshot import as_json as to_json, as_table, check_once
    from pingmon.placement import share_of

    share = share_of(config)
    known = {target.name for target in config.targets}
    unknown = [name for name in names if name not in known]
    if unknown:
        print(f"{config.source}: no target named {', '.join(unknown)} "
              f"(targets: {', '.join(sorted(known)) or 'none'})", file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    elsewhere = [name for name in names if share.owner(name) != share.shard]
    if elsewhere:
        held = ", ".join(f"{name} (shard {share.owner(name)})" for name in elsewhere)
        print(f"{config.source}: not this shard's ({share.shard} of {share.shards}): {held}",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    # Debug: check's answer is on stdout, and its stderr stays quiet unless asked.
    results = run_on_loop(check_once(config, names), loop, logging.DEBUG)
    if as_json:
        print(to_json(results, None if share.shards == 1 else share.shard))
    else:
        print(
            as_table(results) if share.shards == 1 else f"{share.heading()}\n{as_table(results)}"
        )
    return EXIT_OK if all(result.success for result in results) else EXIT_FAILED


def _print_assignment(config: Config, shards: int, by: str | None) -> None:
    from pingmon.placement import assignment, assignment_table

    print(assignment_table(assignment(config, shards, None if by is None else ShardBy(by))))


def _run(config: Config, web: WebOptions, first_look: FileWatch | None, loop: str) -> int:
    from pingmon.service import ListenError, serve

    try:
        run_on_loop(serve(config, first_look=first_look, web_options=web), loop)
    except ListenError as error:
        print(f"pingmon: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK
