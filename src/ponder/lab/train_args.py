"""Argument helpers that ``ponder train sft`` and ``ponder train grpo`` share."""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
from pathlib import Path

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


def check_model_dir(path: str) -> None:
    """``--from DIR`` must be a Hugging Face model folder. What is plainly not one (no folder, no
    config.json, a config.json that names no model type) is refused here in one line, before any
    work; transformers would fail on it deep inside with a message about sentencepiece."""
    folder = Path(path)
    if not folder.is_dir():
        raise UserError(f"--from {path}: no such model directory")
    config = folder / "config.json"
    if not config.is_file():
        steps = [int(m.group(1)) for c in folder.iterdir()
                 if (m := re.fullmatch(r"checkpoint-(\d+)", c.name)) and c.is_dir()]  # fmt: skip
        if steps:  # an unfinished run's folder: its model is only in its checkpoints
            raise UserError(
                f"--from {path} is not a model directory but an unfinished run's: continue it with "
                f"--resume --out {path}, or start from --from {folder / f'checkpoint-{max(steps)}'}"
            )
        raise UserError(f"--from {path} is not a model directory (no config.json)")
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError, AttributeError):  # unreadable, not UTF-8, not JSON, not an object
        model_type = None
    if not isinstance(model_type, str):
        raise UserError(f"--from {path} is not a model directory (its config.json names no model_type)")
