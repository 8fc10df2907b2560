"""benchmarks/countdown_scaling.py names how its SFT model was made: a run folder, a checkpoint
inside one (its step, and the run it belongs to), or a model with no training record."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
scaling = importlib.import_module("countdown_scaling")  # benchmarks/ is scripts, not a package


def test_sft_provenance_of_a_run_a_checkpoint_and_a_bare_model(tmp_path):
    run = tmp_path / "sft"
    (run / "checkpoint-200").mkdir(parents=True)
    record = {"command": "ponder train sft --steps 400", "global_step": 400, "wall_seconds": 600}
    (run / "ponder_train.json").write_text(json.dumps(record))
    assert scaling.sft_provenance(run).startswith("400 steps; the run took 10 min")
    of_checkpoint = scaling.sft_provenance(run / "checkpoint-200")
    assert of_checkpoint.startswith("200 steps, a checkpoint of the run that went on to step 400")
    assert "`ponder train sft --steps 400`" in of_checkpoint
    (tmp_path / "bare").mkdir()
    assert "no ponder_train.json" in scaling.sft_provenance(tmp_path / "bare")
