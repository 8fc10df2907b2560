"""A training run's record (``OUT/ponder_train.json``) and the resume rules SFT and GRPO share,
with what else both do around a run: make its ``--out`` folder, set aside a checkpoint an
interruption left half-written, log the last step, silence every bar under ``--quiet``.

The record holds the exact command, the settings that define the run, and its results; it is
written atomically so that a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ponder.errors import UserError

RECORD = "ponder_train.json"


def read_record(out: str | Path, fix: str = "remove it or choose another --out") -> dict | None:
    """The record in folder ``out`` (None if it has none); one that cannot be read or is not a
    JSON object is a one-line error ending in ``fix``, what the user can do about it."""
    path = Path(out) / RECORD
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):  # unreadable, not UTF-8, not JSON
        raise UserError(f"{path} is unreadable; {fix}") from None
    if not isinstance(record, dict):
        raise UserError(f"{path} is not a run record (not a JSON object); {fix}")
    return record


def write_record(out: Path, record: dict) -> None:
    if "from_record" in record:  # the start's history goes last, after this run's own results
        record = {k: v for k, v in record.items() if k != "from_record"} | {
            "from_record": record["from_record"]
        }
    tmp = out / (RECORD + ".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, out / RECORD)


def start_record(init_from: str | None) -> dict:
    """What a run started with ``--from DIR`` keeps of that model's making: DIR's own record,
    whole, under ``from_record`` (which holds its own start's, and so on down to the fresh
    model). Without it a continued model would name only its last stage, and a start folder that
    is later overwritten (a shipped checkpoint replaced by its continuation) would take the
    earlier stages with it. Empty for a fresh model or a start that has no record."""
    if init_from is None:
        return {}
    parent = read_record(init_from, fix="remove it or start from another --from")
    return {"from_record": parent} if parent is not None else {}


def check_out(out: Path) -> None:
    """Refuse, before any work, an ``--out`` that is a file or lies inside one."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out} is a file; --out must be a folder")
    inside = next((p for p in out.absolute().parents if p.exists()), None)
    if inside is not None and not inside.is_dir():
        raise UserError(f"--out {out}: {inside} is a file, so no folder can be made in it")


def make_out(out: Path) -> None:
    """Create the ``--out`` folder; one that cannot be made (no permission, a read-only or virtual
    file system) is a one-line error."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot make this folder ({e.strerror or e})") from None


def check_resume(out: Path, identity: dict, resume: bool, say: Callable[[str], None]) -> dict | None:
    """Apply the resume rules before any training; returns the previous record (None if new).

    Reusing an output folder needs ``--resume``; resuming needs the same settings; a finished run
    is reported and returned as is (the caller then does nothing).
    """
    from transformers.trainer_utils import get_last_checkpoint

    check_out(out)
    prev = read_record(out)
    last = get_last_checkpoint(str(out)) if out.is_dir() else None
    if not resume and (prev or last or (out / "config.json").exists()):
        raise UserError(
            f"{out} already holds a training run; --resume continues it, or pick another --out"
        )
    if resume and prev:
        was, this = _made_by(prev), identity.get("algorithm", "sft")
        if was != this:  # every setting differs: name what made the folder instead
            held = _MADE_BY.get(was, "a record of another kind")
            raise UserError(f"--resume: {out} holds {held}, not {_MADE_BY[this]}; pick another --out")
        was_cfg = dict(prev.get("config", {}))
        for name in ("init_from", "data"):  # older SFT records hold these as typed, in that cwd
            if isinstance(was_cfg.get(name), str):
                was_cfg[name] = os.path.abspath(was_cfg[name])
        if was_cfg.get("init_from") and was_cfg.get("size") == "tiny":  # older --from records
            was_cfg["size"] = None  # wrote the unused default; the size was the start's own
        changed = [k for k, v in identity.items() if was_cfg.get(k) != v]
        # a setting the run had and this command leaves at its default (identities omit those,
        # so that records written before the setting existed stay resumable)
        changed += [k for k in was_cfg if k not in identity]
        if changed:
            was = ", ".join(f"{k}={was_cfg.get(k)!r}" for k in changed)
            raise UserError(f"--resume: {out} was trained with {was}; use the same settings")
        if prev.get("finished"):
            say(f"{out}: already finished ({prev['global_step']} steps); nothing to do")
            return prev
    if resume and last:
        drop_incomplete_checkpoints(out, say)
        last = get_last_checkpoint(str(out))
    if resume and not last:
        say(f"{out}: nothing to resume; starting from scratch")
    return prev


# what a record says made its folder: sft and grpo (in its config), train average (its kind)
_MADE_BY = {"sft": "an SFT run", "grpo": "a GRPO run", "average": "a model made by train average"}


def _made_by(record: dict) -> str:
    if "kind" in record:
        return str(record["kind"])
    config = record.get("config")
    return str(config.get("algorithm", "sft")) if isinstance(config, dict) else "unknown"


_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def drop_incomplete_checkpoints(out: Path, say: Callable[[str], None]) -> None:
    """Remove the ``checkpoint-N`` folders of ``out`` that were not completely written.

    transformers writes a checkpoint's weights, optimizer, scheduler and RNG state first and its
    ``trainer_state.json`` last (not atomically), and resumes from the highest-numbered folder: a
    run stopped while saving (Ctrl-C, ``kill -9``, a full disk) left a folder that every later
    ``--resume`` crashed on. Such a folder is removed rather than moved aside: nothing in it can be
    resumed from, the run writes the same step's checkpoint again when it gets there, and a
    renamed folder beside the others would still be matched and counted by transformers' rotation
    of ``checkpoint-*`` folders (``--keep-checkpoints``)."""
    for folder in sorted(out.iterdir()):
        if not (folder.is_dir() and _CHECKPOINT.fullmatch(folder.name)):
            continue
        try:
            complete = isinstance(json.loads((folder / "trainer_state.json").read_text()), dict)
        except (OSError, ValueError):
            complete = False
        if not complete:
            shutil.rmtree(folder)
            say(f"removed {folder}: the run stopped while saving it (no complete trainer_state.json)")


def log_last_step():
    """A Trainer callback that logs the last step too (the run's end, or a step where a callback
    before this one stopped it), whatever ``logging_steps``: the record's ``losses`` then end at
    the last step, and its final loss is not one logged up to ``log_every - 1`` steps before
    (``--steps 2 --log-every 10`` reported ``loss 4.613 -> 4.613``, step 1's twice). Put it after
    the callbacks that may stop a run."""
    from transformers import TrainerCallback

    class LogLastStep(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= state.max_steps or control.should_training_stop:
                control.should_log = True

    return LogLastStep()


@contextmanager
def quiet_bars(quiet: bool = True) -> Iterator[None]:
    """With ``quiet``, no progress bar inside the block: neither datasets' (TRL's tokenizing
    passes, "Tokenizing train dataset") nor transformers' ("Loading weights", "Writing model
    shards", the trainer's own bar); each is as it was after the block."""
    if not quiet:
        yield
        return
    import datasets

    from ponder.models.hf import no_progress_bars

    shown = not datasets.are_progress_bars_disabled()
    datasets.disable_progress_bars()
    try:
        with no_progress_bars():
            yield
    finally:
        if shown:
            datasets.enable_progress_bars()


@contextmanager
def stopped_by_sigterm_as_exit() -> Iterator[None]:
    """Within the block, SIGTERM raises SystemExit(143) instead of ending the process at once.

    Python's default for SIGTERM (``kill``, a scheduler's stop, ``timeout``) skips ``finally``
    blocks, so a run stopped that way recorded no wall time. As an exception it unwinds like
    Ctrl-C: the record is written and the checkpoints already saved stay resumable. Signal handlers
    can only be set from the main thread; elsewhere the block runs unchanged.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _exit(signum, frame):
        raise SystemExit(128 + signum)

    before = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)
