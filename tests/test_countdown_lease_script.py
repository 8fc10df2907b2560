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
