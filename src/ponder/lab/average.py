"""`ponder train average`: one model whose weights are the mean of several checkpoints of a run.

The idea is tail averaging of the iterates (Polyak and Juditsky 1992; stochastic weight averaging,
Izmailov et al. 2018): late checkpoints of one run lie near each other, and their mean sits in a
flatter, less noisy place than any one of them. Model soups (Wortsman et al. 2022) average
fine-tuned models in the same way, and WARP (Ramé et al. 2024) averages RL policies. GRPO on the
lab's countdown model moves several points between checkpoints ten steps apart (32.0, 31.5, 29.5%
on held-out puzzles at steps 60, 70, 80), the noise an average should remove. Measured on five
such runs, the mean of a run's second half beat its last step twice and lost twice, by most where
the window held a bad checkpoint (docs/results/countdown_scaling/grpo_lr): a tool to try, not a
default of ``ponder train grpo``.

Departures: a uniform mean of the saved checkpoints the caller names, after training, not a
running average kept by the optimizer (SWA) or a greedy choice of which models to add (greedy
soups); nothing is recalibrated (the lab's Llama has RMSNorm, which keeps no running statistics).
Checkpoints must share one architecture; their weights are averaged in float32 and saved in the
first checkpoint's dtype.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import time
from pathlib import Path

from ponder.errors import UserError
from ponder.lab.runrecord import check_out, make_out, read_record, write_record
from ponder.lab.train_args import require_train_packages
from ponder.models.base import file_sha256

WEIGHTS = "model.safetensors"
# files of a checkpoint folder that are not part of the model (the trainer's state, the run's own
# record); everything else in the first source (config, tokenizer files) is copied to the output
_NOT_MODEL = {WEIGHTS, "ponder_train.json", "optimizer.pt", "scheduler.pt", "trainer_state.json",
              "training_args.bin"}  # fmt: skip
# config fields that do not change what the weights mean
_HARMLESS = {"transformers_version", "dtype", "torch_dtype", "use_cache", "_name_or_path"}


def add_average_command(tsub) -> None:
    a = tsub.add_parser(
        "average", help="average the weights of several checkpoints of one run into one model"
    )
    a.add_argument("sources", nargs="+", metavar="DIR",
                   help="model folders to average (a run's folder, its checkpoint-N folders)")
    a.add_argument("--out", required=True, help="output dir for the averaged HF model")
    a.set_defaults(func=cmd_train_average)


def cmd_train_average(args: argparse.Namespace) -> int:
    require_train_packages()
    command = shlex.join(["ponder", "train", "average", *args.sources, "--out", args.out])
    record = average_models([Path(s) for s in args.sources], Path(args.out), command)
    print(f"saved hf:{args.out} · the mean of {len(record['sources'])} checkpoints · "
          f"{record['wall_seconds']:.1f} s")  # fmt: skip
    return 0


def average_models(sources: list[Path], out: Path, command: str) -> dict:
    """Write the uniform average of ``sources``' weights to ``out`` (a loadable HF model folder,
    with the first source's config and tokenizer) and its run record; return the record."""
    from safetensors.torch import load_file, save_file

    if len(sources) < 2:
        raise UserError("ponder train average: name at least two model folders")
    if len({s.resolve() for s in sources}) < len(sources):
        raise UserError("ponder train average: a folder is named twice")
    for s in sources:
        if not (s / WEIGHTS).is_file():
            raise UserError(f"{s}: no {WEIGHTS} (a model folder or a checkpoint-N folder)")
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} is a file; --out must be a new or empty folder")
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} is not empty; pick another --out")
    check_out(out)
    started = time.time()
    # a run's final folder holds the same weights as its last checkpoint-N: named both, that step
    # would count twice
    digests = {s: file_sha256(s / WEIGHTS) for s in sources}
    seen: dict[str, Path] = {}
    for s, digest in digests.items():
        if digest in seen:
            raise UserError(f"{seen[digest]} and {s} hold the same weights; name one of them")
        seen[digest] = s
    configs = [_architecture(s) for s in sources]
    for s, c in zip(sources[1:], configs[1:]):
        if c != configs[0]:
            raise UserError(f"{s} has another architecture than {sources[0]}; cannot average")
    metadata = _read(sources[0], _metadata)
    total = None
    for s in sources:
        tensors = _read(s, load_file)
        if total is None:
            dtypes = {k: t.dtype for k, t in tensors.items()}
            total = {k: t.float() for k, t in tensors.items()}
            continue
        same_layout = tensors.keys() == total.keys() and all(
            t.shape == total[k].shape for k, t in tensors.items()
        )
        if not same_layout:
            raise UserError(f"{s}: its weights do not match {sources[0]}'s; cannot average")
        for k, t in tensors.items():
            total[k] += t.float()
    mean = {k: (t / len(sources)).to(dtypes[k]) for k, t in total.items()}
    make_out(out)
    for path in sources[0].iterdir():
        if path.is_file() and path.name not in _NOT_MODEL and not path.name.startswith("rng_state"):
            shutil.copy2(path, out / path.name)
    save_file(mean, str(out / WEIGHTS), metadata=metadata)
    record = {
        "command": command,
        "kind": "average",
        "sources": [{"path": str(s), "sha256": digests[s]} for s in sources],
        "sha256": file_sha256(out / WEIGHTS),
        "wall_seconds": round(time.time() - started, 3),
        "finished": True,
    }
    # how the checkpoints were trained: the record of the last source that has one (named in
    # order, the latest, whose record names every stage before it)
    made = next((r for r in map(_run_record, reversed(sources)) if r is not None), None)
    if made is not None:
        record["from_record"] = made
    write_record(out, record)
    return record


def _architecture(folder: Path) -> dict:
    """The config, less the fields that do not change what the weights mean."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, json.JSONDecodeError):
        raise UserError(f"{folder}: no readable config.json") from None
    return {k: v for k, v in config.items() if k not in _HARMLESS}


def _read(folder: Path, load):
    """``load(path)`` of ``folder``'s weights; an unreadable file is a one-line error."""
    from safetensors import SafetensorError

    try:
        return load(str(folder / WEIGHTS))
    except (SafetensorError, OSError) as e:
        raise UserError(f"{folder}: unreadable {WEIGHTS} ({e})") from None


def _metadata(path: str) -> dict | None:
    """The metadata a safetensors file carries (saved again with the mean)."""
    from safetensors import safe_open

    with safe_open(path, framework="pt") as f:
        return f.metadata()


def _run_record(folder: Path) -> dict | None:
    """The run record of a model folder, or of the run a checkpoint-N folder belongs to."""
    fix = "remove it or average other folders"
    record = read_record(folder, fix)
    if record is None and folder.name.startswith("checkpoint-"):
        record = read_record(folder.parent, fix)
    return record


