"""Argument helpers that ``ponder train sft`` and ``ponder train grpo`` share."""

from __future__ import annotations

import importlib.util

from ponder.errors import UserError

TRAIN_PACKAGES = ("torch", "transformers", "tokenizers", "datasets", "trl", "accelerate")


def require_train_packages() -> None:
    missing = [m for m in TRAIN_PACKAGES if importlib.util.find_spec(m) is None]
    if missing:
        raise UserError(f"ponder train needs {', '.join(missing)}: pip install 'ponder[train]'")
