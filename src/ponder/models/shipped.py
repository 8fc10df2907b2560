"""Lab checkpoints shipped inside the package: ``--model lab:NAME`` runs one without training.

Each lives in ``ponder/lab/checkpoints/NAME`` (package data of the lab, found here by path so that
loading a model never imports the lab's training code) as an ordinary Hugging Face model directory (so
``hf:`` loads it too) with the ``ponder_train.json`` its training run wrote: the exact command,
seed and results that made it. ``checkpoints/README.md`` lists them and how they were measured.
"""

from __future__ import annotations

from pathlib import Path

from ponder.models.base import ModelError

ROOT = Path(__file__).parent.parent / "lab" / "checkpoints"


def shipped_names() -> list[str]:
    """Names of the shipped checkpoints (directories holding a config.json)."""
    if not ROOT.is_dir():
        return []
    return sorted(p.name for p in ROOT.iterdir() if (p / "config.json").is_file())


def shipped_dir(name: str) -> Path:
    """The directory of shipped checkpoint ``name``; a one-line ModelError if there is none."""
    path = ROOT / name
    if "/" in name or name.startswith(".") or not (path / "config.json").is_file():
        known = ", ".join(shipped_names()) or "none"
        raise ModelError(f"no shipped lab checkpoint {name!r}; shipped: {known}")
    return path
