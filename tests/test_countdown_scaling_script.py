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


def test_bad_arguments_and_a_failed_stage_are_one_line_errors(tmp_path):
    """countdown_scaling.py and lab_scaling.py: each was a traceback (an --out that is a file, a
    shipped model that does not exist, --threads 0 from torch; a `ponder train` stage that refused
    its arguments in one line was followed by a CalledProcessError traceback)."""
    import subprocess

    (tmp_path / "file").write_text("x\n")
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "config.json").write_text("{}")
    out = str(tmp_path / "out")
    scaling_args = ["--held-out", "2", "--strategy-problems", "0", "--grpo-steps", "1"]
    cases = [
        ("countdown_scaling.py", ["--out", str(tmp_path / "file")], "is a file; --out must be a folder"),
        ("countdown_scaling.py", ["--out", str(tmp_path / "file" / "x")], "is a file, so no folder"),
        ("countdown_scaling.py", ["--sft", "lab:nope"], "--sft: no shipped lab checkpoint 'nope'"),
        ("countdown_scaling.py", ["--sft", str(tmp_path)], "holds no model (no config.json)"),
        ("countdown_scaling.py", ["--threads", "0"], "--threads: must be a whole number of at least 1"),
        ("countdown_scaling.py", ["--held-out", "0"], "--held-out: must be a whole number of at least 1"),
        ("countdown_scaling.py", ["--sft", str(tmp_path / "notamodel")],
         "`train grpo` failed (exit 2); its error is above"),
        ("lab_scaling.py", ["--out", str(tmp_path / "file")], "is a file; --out must be a folder"),
        ("lab_scaling.py", ["--threads", "0"], "`train sft` failed (exit 2); its error is above"),
    ]  # fmt: skip
    for script, args, why in cases:
        extra = scaling_args if script == "countdown_scaling.py" else ["--sft-steps", "2"]
        proc = subprocess.run([sys.executable, str(BENCHMARKS / script), "--out", out, *extra, *args],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 2, (script, args, proc.stderr[-2000:])
        assert "Traceback" not in proc.stderr and why in proc.stderr.splitlines()[-1], (script, args)
    assert not (tmp_path / "out" / "grpo").exists()  # no GRPO stage ran
