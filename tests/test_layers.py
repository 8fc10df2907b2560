"""The import contract (pyproject's [tool.importlinter]): the layers of ARCHITECTURE.md hold, and a
wrong-way import breaks the suite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.skipif(
    not LINT.exists(), reason="import-linter is not installed (pip install 'ponder[dev]')"
)


def lint(src: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(src)}  # this tree's ponder, ahead of the installed one
    return subprocess.run(
        [str(LINT), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
        capture_output=True, text=True, env=env, cwd=src, timeout=300,
    )  # fmt: skip


def test_the_layers_hold():
    proc = lint(ROOT / "src")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "0 broken" in proc.stdout


def test_a_wrong_way_import_is_caught(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(ROOT / "src" / "ponder", src / "ponder",
                    ignore=shutil.ignore_patterns("__pycache__", "checkpoints"))  # fmt: skip
    score = src / "ponder" / "verify" / "score.py"
    score.write_text(score.read_text() + "\nimport ponder.serve.app  # noqa: upward, on purpose\n")
    proc = lint(src)
    assert proc.returncode != 0
    assert "ponder.verify.score -> ponder.serve.app" in proc.stdout, proc.stdout[-3000:]
