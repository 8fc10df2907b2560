"""argparse value types shared by every `ponder` subcommand (errors become one-line messages)."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return value


def number(text: str) -> float:
    """A float; its range is checked where it is used (``think.config.Sampling`` for sampling
    settings, so that the CLI refuses what the spec and the server refuse, with the same words)."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


THREADS_HELP = (
    "CPU threads for in-process models (llama.cpp decode threads, torch threads; HTTP models "
    "ignore it); default $PONDER_THREADS, else every core; 1 when another job shares the CPU"
)
