"""Argument helpers that ``ponder train sft`` and ``ponder train grpo`` share."""

from __future__ import annotations

import argparse
import importlib.util

from ponder.errors import UserError
from ponder.requirements import TRAIN_FLOORS, too_old

# requests: trl before 1.14.2 imports it without requiring it
TRAIN_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "trl", "accelerate", "requests")


def count_option(text: str) -> int | str:
    """--count: a whole number, or a range "3-4" of sizes mixed in one task (the problem generator
    checks the values)."""
    low, dash, high = text.strip().partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number or a range such as 3-4")
    return f"{int(low)}-{int(high)}" if dash else int(low)


def require_train_packages() -> None:
    missing = [m for m in TRAIN_PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"ponder train needs {', '.join(missing)}: pip install 'ponder[train]'")
    old = too_old(TRAIN_FLOORS)
    if old:
        raise UserError(f"ponder train needs {', '.join(old)}: pip install -U 'ponder[train]'")
