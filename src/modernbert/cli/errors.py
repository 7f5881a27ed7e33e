"""What a bad input looks like on the command line: one line ``error: ...`` on stderr, exit code 2."""

from __future__ import annotations

import argparse
from typing import NoReturn

from ..errors import CLIError

__all__ = ["CLIError", "Parser", "one_line"]


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``error: ...``) on stderr, exit code 2."""

    def error(self, message: str) -> NoReturn:
        message = " ".join(message.split())
        self.exit(2, f"error: {message} (see '{self.prog} --help')\n")


def one_line(e: BaseException) -> str:
    """The message of an exception on one line (a KeyError says which key is missing)."""
    text = " ".join(str(e).split())
    if isinstance(e, KeyError):
        text = f"missing key {text}"
    return text or type(e).__name__
