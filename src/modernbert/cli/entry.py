"""The entry point: the parser of every subcommand, and how errors become exit codes and one-line messages."""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import sys
import warnings
from typing import Any

from .. import __version__
from .commands import COMMANDS
from .errors import CLIError, Parser, one_line
from .output import ensure_ascii


def build_parser() -> argparse.ArgumentParser:
    """The ``modernbert`` argument parser (a subcommand with its own parser is listed here, parsed by itself)."""
    parser = Parser(
        prog="modernbert",
        description="ModernBERT from the command line: fill-mask, classification, NER, question answering, "
                    "embeddings, model info and MLM pretraining.",
        epilog="'modernbert COMMAND --help' shows the options of a command. Exit codes: 0 ok, 2 bad input, "
               "1 unexpected failure.",
    )
    parser.add_argument("--version", action="version", version=f"modernbert {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, module in COMMANDS.items():
        if getattr(module, "OWN_PARSER", False):
            sub.add_parser(name, help=module.HELP, add_help=False)
            continue
        description = inspect.cleandoc(module.run.__doc__ or module.HELP).replace("``", "")
        p = sub.add_parser(name, help=module.HELP, description=description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(p)
        p.set_defaults(run=module.run)
    return parser


def _run(argv: list[str]) -> int:
    if argv and getattr(COMMANDS.get(argv[0]), "OWN_PARSER", False):
        return COMMANDS[argv[0]].run(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.run(args)


def _show_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None,
                  line: str | None = None) -> None:
    sys.stderr.write(f"warning: {' '.join(str(message).split())}\n")


class _LogHandler(logging.StreamHandler):
    """Log records of the modernbert loggers as one ``warning: ...`` line each on (the current) stderr."""

    def __init__(self) -> None:
        super().__init__()
        self.setLevel(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {' '.join(record.getMessage().split())}"


def main(argv: list[str] | None = None) -> int:
    """Run the ``modernbert`` command line on ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if ensure_ascii(sys.stdout) and hasattr(sys.stdout, "reconfigure"):
        try:  # a non-UTF-8 terminal: tables show "?" for what it cannot encode (JSON output is ASCII-escaped)
            sys.stdout.reconfigure(errors="replace")
        except (ValueError, OSError):
            pass
    debug = os.environ.get("MODERNBERT_DEBUG", "").strip().lower() in ("1", "true", "yes")
    handler = _LogHandler()
    logger = logging.getLogger("modernbert")
    logger.addHandler(handler)
    try:
        return _main(argv, debug)
    finally:
        logger.removeHandler(handler)


def _main(argv: list[str], debug: bool) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return _run(argv)
        except SystemExit as e:  # argparse: --help, --version, bad arguments
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except CLIError as e:
            _error(str(e))
            return 2
        except KeyboardInterrupt:
            _error("interrupted")
            return 130
        except BrokenPipeError:  # e.g. `modernbert ... | head`: stop quietly
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError):
                pass
            return 1
        except (ValueError, OSError) as e:  # bad input reported by the library (missing files, bad values)
            if debug:
                raise
            _error(one_line(e))
            return 2
        except Exception as e:
            if debug:
                raise
            _error(f"unexpected {type(e).__name__}: {one_line(e)} (set MODERNBERT_DEBUG=1 for the traceback)")
            return 1


def _error(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()
