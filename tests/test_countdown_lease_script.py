"""benchmarks/countdown_lease.py: the pieces that keep a lease's budget. A deadline stops a real
SFT run after its current step and the model is still saved (a killed process would leave none);
the step clock times real steps; the planner rounds to what fits."""

from __future__ import annotations

import importlib.util
import json
import tarfile
import time
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "countdown_lease.py"


@pytest.fixture(scope="module")
def lease():
    for name in ("torch", "transformers", "datasets", "trl"):
        pytest.importorskip(name, reason=f"the lab needs {name} (pip install 'ponder[train]')")
    spec = importlib.util.spec_from_file_location("countdown_lease", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plan_steps_fits_the_time_in_hundreds_within_bounds(lease):
    assert lease.plan_steps(300, 0.1) == 3000
    assert lease.plan_steps(305, 0.1) == 3000  # 3,050 rounds down
    assert lease.plan_steps(5, 0.1) == 100  # never fewer than the least
    assert lease.plan_steps(1e6, 0.001) == 20_000  # nor more than the most


def test_a_passed_deadline_stops_sft_after_one_step_and_the_model_is_saved(lease, tmp_path):
    from ponder.lab.sft import SFTOptions, train_sft
    from ponder.models import resolve

    clock, stop = lease.StepClock(first=1), lease.Deadline(at=time.time())
    opts = SFTOptions(out=str(tmp_path / "sft"), task="countdown", task_options={"count": "3"},
                      examples=40, steps=50, batch_size=4, size="tiny", device="cpu", log_every=1)  # fmt: skip
    record = train_sft(opts, progress=False, callbacks=[clock, stop], say=lambda _: None)
    assert stop.stopped_at == 1 and record["global_step"] == 1
    with pytest.raises(SystemExit, match="too short"):  # one step gives no interval to time
        clock.seconds_per_step()
    model = resolve(f"hf:{tmp_path / 'sft'}")  # the stopped run's model is whole
    assert model.describe()["parameters"] == record["parameters"]
    lease.tar_model(tmp_path / "sft", tmp_path / "sft.tar")
    with tarfile.open(tmp_path / "sft.tar") as tar:
        names = set(tar.getnames())
        assert {"model.safetensors", "config.json", "tokenizer.json", "ponder_train.json"} <= names
        saved = json.load(tar.extractfile("ponder_train.json"))
    assert saved["global_step"] == 1


def test_the_step_clock_times_the_steps_after_its_first(lease, tmp_path):
    from ponder.lab.sft import SFTOptions, train_sft

    clock = lease.StepClock(first=2)
    opts = SFTOptions(out=str(tmp_path / "sft"), task="countdown", task_options={"count": "3"},
                      examples=40, steps=5, batch_size=4, size="tiny", device="cpu", log_every=1)  # fmt: skip
    record = train_sft(opts, progress=False, callbacks=[clock], say=lambda _: None)
    per_step = clock.seconds_per_step()
    assert clock.last == 5 and 0 < per_step * 3 < record["wall_seconds"]


def test_what_would_fail_later_is_refused_in_one_line_before_the_probe(lease, tmp_path):
    """Each was a traceback, the last three after the probe or SFT had spent the lease: an --out
    that is a file, a --budget of no time, an unknown --size (a UserError traceback), an --out
    whose sft/ holds an earlier run, a --tar-to that is a file."""
    import subprocess
    import sys

    (tmp_path / "file").write_text("x\n")
    (tmp_path / "old" / "sft").mkdir(parents=True)
    (tmp_path / "old" / "sft" / "ponder_train.json").write_text("{}")
    small = ["--examples", "200", "--batch-size", "4", "--size", "tiny", "--probe-steps", "12",
             "--device", "cpu", "--grpo-steps", "1"]  # fmt: skip
    new = str(tmp_path / "new")
    cases = [
        (["--out", str(tmp_path / "file"), "--budget", "1"], "--out", "is a file"),
        (["--out", new, "--budget", "0"], "--budget must be a number of seconds above 0", ""),
        (["--out", new, "--budget", "1", "--size", "huge"], "unknown model size 'huge'", ""),
        (["--out", str(tmp_path / "old"), "--budget", "1"], "sft already holds a training run", ""),
        (["--out", new, "--budget", "1", "--tar-to", str(tmp_path / "file")], "--tar-to", "is a file"),
    ]  # fmt: skip
    for args, why, also in cases:
        proc = subprocess.run([sys.executable, str(SCRIPT), *small, *args], capture_output=True,
                              text=True, timeout=300)  # fmt: skip
        assert proc.returncode == 2, (args, proc.stderr[-2000:])
        last = proc.stderr.splitlines()[-1]
        assert "Traceback" not in proc.stderr and why in last and also in last, (args, last)
        assert "SFT probe" not in proc.stdout, args


def test_a_tar_to_folder_that_does_not_exist_is_made(lease, tmp_path):
    """It was found missing only when SFT had finished (FileNotFoundError, no lease.json)."""
    import subprocess
    import sys

    tar_to = tmp_path / "results" / "lease"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "run"), "--budget", "1",
         "--examples", "200", "--batch-size", "4", "--size", "tiny", "--probe-steps", "12",
         "--device", "cpu", "--tar-to", str(tar_to)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    with tarfile.open(tar_to / "sft.tar") as tar:
        assert "model.safetensors" in tar.getnames()
    assert json.loads((tmp_path / "run" / "lease.json").read_text())["sft"]["global_step"] >= 1
