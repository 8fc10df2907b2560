"""Reinforcement learning from verifier rewards with GRPO, on TRL's ``GRPOTrainer``.

GRPO (Shao et al. 2024, "DeepSeekMath", section 4) samples a group of G completions per prompt,
scores them, and uses each reward minus its group's mean (divided by the group's standard
deviation) as the advantage of a clipped policy-gradient step; a KL penalty to a frozen reference
model is optional (``beta``). Here the reward is ponder's own grader (``lab.rewards``: the
``verify.check`` that scores ``ponder bench``), plus an optional small format reward and, for
countdown, an optional process reward from the step verifier (``rewards.steps_reward``).

Departures from the paper, most of them TRL's defaults: one policy update per generation batch
(``num_iterations=1``, so the clipping never binds: the policy that sampled is the one updated),
token-level loss normalisation over the batch (TRL's "dapo" loss, no length bias), KL off unless
``beta > 0``, and no reward model — the rewards are exact. Float32 and no activation
checkpointing: the lab models are tiny and the machine may be a laptop CPU.

Prompts are plain text, ``format.prompt_text(question)``: TRL tokenizes a plain-text prompt with
the tokenizer as is, which for the lab's character tokenizer gives exactly the ids its chat
template (``format.CHAT_TEMPLATE``) renders, so a conversational dataset would buy nothing.

CPU notes (TRL 1.16): ``GRPOConfig`` defaults to ``bf16=True`` and activation checkpointing on,
both wrong for a tiny float32 model on CPU, so both are switched off; generation goes through
``transformers.generate`` (no vLLM). TRL builds its own GenerationConfig, which drops the model's
``suppress_tokens`` (<pad>, <s>, <unk>); they are passed back in through ``generation_kwargs``.

Runs are resumable like ``lab.sft``: checkpoints every ``save_every`` steps in
``OUT/checkpoint-N`` (the two latest kept), ``resume=True`` continues from the latest complete
one provided the settings match ``OUT/ponder_train.json``, the final model lands in ``OUT`` itself.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ponder.errors import UserError
from ponder.lab.runrecord import (  # noqa: F401 (read_record is re-exported)
    check_resume,
    log_last_step,
    make_out,
    quiet_bars,
    read_record,
    start_record,
    stopped_by_sigterm_as_exit,
    write_record,
)
from ponder.lab import format, traces
from ponder.lab.rewards import problem_columns, reward_setup
from ponder.lab.train_args import check_model_dir

# Settings that must match for --resume to continue a run.
IDENTITY = ("algorithm", "task", "task_options", "examples", "steps", "num_generations",
            "batch_size", "lr", "max_completion_length", "temperature", "beta", "format_reward",
            "init_from", "seed")  # fmt: skip


@dataclass
class GRPOOptions:
    out: str  # output directory: checkpoints, final model, ponder_train.json
    init_from: str  # the starting model (an HF directory, e.g. from `ponder train sft`)
    task: str = "add"  # a lab task (traces.TASKS), or with ``data`` any problem set (humaneval...)
    task_options: dict = field(default_factory=dict)  # digits / count / blanks
    examples: int | None = None  # distinct problems; default steps * batch_size (fresh each step)
    steps: int = 100  # optimizer steps, one generation batch each
    num_generations: int = 8  # G: completions per prompt (the group)
    batch_size: int = 4  # prompts per step; a step samples batch_size * num_generations completions
    lr: float = 1e-4  # stable only from a model not annealed to zero (see lab.sft: schedule)
    max_completion_length: int = 128  # tokens (characters, for the lab tokenizer)
    temperature: float = 1.0  # sampling temperature of the rollouts
    beta: float = 0.0  # KL coefficient to the frozen starting model; 0 = no reference model
    format_reward: float = 0.0  # weight of the "ends with an Answer: line" reward
    step_reward: float = 0.0  # countdown: weight of the process reward (rewards.steps_reward)
    seed: int = 0  # problems, sampling and data order
    device: str = "auto"
    save_every: int = 50  # checkpoint interval in steps
    keep_checkpoints: int = 2  # the latest N checkpoints are kept (a scaling curve wants them all)
    log_every: int = 1  # metrics logging interval in steps (the record reads these)
    resume: bool = False
    threads: int | None = None  # CPU threads for torch (None: torch's default, every core)
    data: str | None = None  # a problem file for ``task`` (e.g. humaneval.jsonl.gz): real problems
    # A step's rollouts, sampled at once, go through the loss in this many pieces (gradient
    # accumulation, one optimizer step; TRL shuffles the rollouts into them after computing the
    # advantages over the whole step): the same step in a K-th of the activation memory.
    micro_batches: int = 1
    algorithm: str = field(default="grpo", init=False)

    def __post_init__(self) -> None:
        if self.data is not None:
            if self.task in traces.TASKS:
                raise UserError(f"--data takes a problem set (e.g. humaneval), not the lab task {self.task}")
            if self.task_options:
                raise UserError(f"--{sorted(self.task_options)[0]} applies to lab tasks only")
            if not os.path.isfile(self.data):
                raise UserError(f"--data {self.data}: no such file")
        elif self.task not in traces.TASKS:
            raise UserError(
                f"--task must be one of {', '.join(traces.TASKS)} (or a problem set with --data "
                f"FILE); got {self.task!r}"
            )
        allowed = () if self.data is not None else traces.TASK_OPTIONS[self.task]
        extra = sorted(set(self.task_options) - set(allowed))
        if extra:
            raise UserError(
                f"--{extra[0]} does not apply to task {self.task} (its options: "
                + ", ".join(f"--{o}" for o in allowed) + ")"
            )
        if self.examples is None:
            self.examples = self.steps * self.batch_size
        for name in ("examples", "steps", "batch_size", "max_completion_length", "save_every",
                     "log_every", "threads"):  # fmt: skip
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UserError(f"--{name.replace('_', '-')} must be a positive integer")
        rollouts = self.batch_size * self.num_generations
        if self.micro_batches < 1 or rollouts % self.micro_batches:
            raise UserError(f"--micro-batches {self.micro_batches} must divide a step's {rollouts} "
                            "rollouts (--batch-size x --num-generations)")
        if self.examples < self.batch_size:
            raise UserError(f"--examples ({self.examples}) must be at least --batch-size ({self.batch_size})")
        if self.num_generations < 2:
            raise UserError("--num-generations must be at least 2 (advantages compare a group)")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise UserError(f"--lr must be a positive number; got {self.lr}")
        if not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise UserError(f"--temperature must be > 0 (rollouts are sampled); got {self.temperature}")
        for name in ("beta", "format_reward", "step_reward"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise UserError(f"--{name.replace('_', '-')} must be >= 0; got {value}")
        if self.step_reward and self.task != "countdown":
            raise UserError(f"--step-reward checks countdown searches; --task is {self.task}")
        check_model_dir(self.init_from)

    def identity(self) -> dict:
        d = asdict(self)
        d["init_from"] = os.path.abspath(self.init_from)
        ident = {k: d[k] for k in IDENTITY}
        if self.data is not None:  # only then: the records of lab-task runs stay as they were
            ident["data"] = os.path.abspath(self.data)
        if self.step_reward:  # likewise: records of runs without it stay resumable
            ident["step_reward"] = self.step_reward
        if self.micro_batches != 1:  # likewise
            ident["micro_batches"] = self.micro_batches
        return ident


def build_dataset(opts: GRPOOptions):
    """One row per problem: the ``prompt`` and the columns the rewards rebuild it from.

    Lab tasks get the lab's plain-text prompt. Problems of a real set (``data``) get the messages
    a ponder strategy sends (``think.base.chat_messages`` with the problem's own instructions: for
    a code task, to write the function in a fenced block), as a conversational prompt that TRL
    renders with the model's chat template; the reward is the same grader (``check``: for code,
    the problem's tests run in the sandbox)."""
    from datasets import Dataset

    if opts.data is None:
        problems = traces.make_problems(opts.task, opts.examples, opts.seed, **opts.task_options)
        prompts = [format.prompt_text(p.question) for p in problems]
    else:
        from ponder.problems import load_problems
        from ponder.think.base import chat_messages, instructions_for

        from ponder.problems.errors import ProblemSetError

        try:
            problems = load_problems(opts.task, data=opts.data, limit=opts.examples, seed=opts.seed)
        except ProblemSetError as e:
            raise UserError(str(e)) from None
        prompts = [list(chat_messages(p, instructions_for(p))) for p in problems]
        if len(problems) < opts.batch_size:
            raise UserError(f"--data {opts.data}: {len(problems)} problems, fewer than --batch-size")
    return Dataset.from_list(
        [{"prompt": q, **problem_columns(p)} for q, p in zip(prompts, problems, strict=True)]
    )


def _prompt_tokens(tokenizer, prompt) -> int:
    """A prompt's tokens; a conversational one's are estimated from its contents (plus room for
    the chat template's markup): the number only sizes a choice of KV cache."""
    if isinstance(prompt, str):
        return len(tokenizer(prompt)["input_ids"])
    return len(tokenizer("".join(m["content"] for m in prompt))["input_ids"]) + 64


def reward_curve(log_history: list[dict]) -> list[list]:
    """[step, mean reward, mean correctness] of every logged training step (TRL's log history)."""
    key = "rewards/correctness_reward/mean"
    return [
        [h["step"], h["reward"], h.get(key, h["reward"])] for h in log_history if "reward" in h
    ]


def summarize(curve: list[list]) -> dict:
    """Mean reward and accuracy over the first and the last tenth of the logged steps."""
    if not curve:
        return {}
    k = max(1, len(curve) // 10)

    def mean(xs):
        return round(sum(xs) / len(xs), 4)

    first, last = curve[:k], curve[-k:]
    return {
        "window_steps": k,
        "reward_first": mean([r for _, r, _ in first]),
        "reward_last": mean([r for _, r, _ in last]),
        "accuracy_first": mean([a for _, _, a in first]),
        "accuracy_last": mean([a for _, _, a in last]),
    }


def _progress_callback():
    """transformers' tqdm bar, as in SFT (so it reaches a log file or a pipe as it goes, where a
    rich bar drew only at the end), with the latest reward and accuracy beside it in place of the
    Trainer's printing of every logged metrics dict (~30 numbers a step)."""
    from transformers.trainer_callback import ProgressCallback

    class RewardProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kw):
            if self.training_bar is not None and logs and "reward" in logs:
                acc = logs.get("rewards/correctness_reward/mean", logs["reward"])
                self.training_bar.set_postfix_str(f"reward {logs['reward']:.3f}  acc {acc:.3f}")

    return RewardProgress()


def _fast_rollouts(model, length: int, rows: int) -> None:
    """Make this model's ``generate`` decode TRL's rollouts with ``models.hf_decode.decode``
    (finished rows leave the batch; a prefix-reading static cache of ``length`` positions), or,
    for a generation config that ``decode`` does not cover, ``generate`` on a fresh
    ``PrefixStaticCache``; either in parts of at most ``rows`` rows (``kv_prefix.static_rows``:
    a step's rollouts whose cache would pass ``STATIC_CACHE_BYTES``, e.g. 24 puzzles x 8 on the
    lab models, run as parts that fit rather than on transformers' growing cache: one such step
    97 s against 234 s, docs/results/hf_static_cache). TRL's GRPO calls ``generate`` with a
    generation config only, which can name transformers' own caches but cannot hand over a cache
    object or another decoding loop; so the instance's method is wrapped (the class and every
    other model are untouched; ``save_pretrained`` ignores it)."""
    from ponder.models.kv_prefix import prefix_cache_kwargs
    from ponder.models.hf_decode import decode, plain_config

    real = model.generate

    def generate(input_ids=None, attention_mask=None, generation_config=None, **kwargs):
        if input_ids is None or attention_mask is None or len(input_ids) <= rows:
            return one_part(input_ids, attention_mask, generation_config, **kwargs)
        if kwargs:  # other per-row inputs (images...): one batch, on transformers' own cache
            return real(input_ids=input_ids, attention_mask=attention_mask,
                        generation_config=generation_config, **kwargs)  # fmt: skip
        parts = [
            one_part(input_ids[i : i + rows], attention_mask[i : i + rows], generation_config)
            for i in range(0, len(input_ids), rows)
        ]
        return join_parts(parts, (generation_config or model.generation_config).pad_token_id)

    def one_part(input_ids, attention_mask, generation_config, **kwargs):
        c = generation_config
        if (
            c is not None and not kwargs and input_ids is not None and attention_mask is not None
            and c.max_new_tokens and plain_config(c, sampling=bool(c.do_sample))
        ):  # fmt: skip
            eos = c.eos_token_id if isinstance(c.eos_token_id, list) else [c.eos_token_id]
            return decode(
                model, input_ids, attention_mask, c.max_new_tokens, c.pad_token_id,
                [e for e in eos if e is not None], c.suppress_tokens or (),
                temperature=c.temperature if c.do_sample else 0.0,
            )  # fmt: skip
        if not {"cache", "past_key_values"} & set(kwargs):
            kwargs.update(prefix_cache_kwargs(model, length))
        return real(input_ids=input_ids, attention_mask=attention_mask,
                    generation_config=generation_config, **kwargs)  # fmt: skip

    model.generate = generate


def join_parts(parts, pad: int | None):
    """The rows of several ``decode`` / ``generate`` outputs (prompt + new tokens, the same
    prompt width) as one tensor. A part ends early only when every row in it has ended (EOS),
    so its shorter rows are padded after their end, as ``generate`` pads an ended row (with
    the pad id, else 0; TRL masks everything after a completion's first EOS)."""
    import torch

    width = max(p.shape[1] for p in parts)
    fill = 0 if pad is None else pad
    return torch.cat(
        [torch.nn.functional.pad(p, (0, width - p.shape[1]), value=fill) for p in parts]
    )


def train_grpo(
    opts: GRPOOptions, command: str | None = None, progress: bool = True, callbacks=None,
    say=print,
) -> dict:
    """Train (or resume, or find finished) the GRPO run in ``opts.out``; returns its record. Without
    ``progress``, no progress bar at all (datasets' and transformers' included)."""
    with quiet_bars(not progress):
        return _train_grpo(opts, command, progress, callbacks, say)


def _train_grpo(opts: GRPOOptions, command, progress: bool, callbacks, say) -> dict:
    import torch
    from transformers.trainer_callback import PrinterCallback, ProgressCallback
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer

    from ponder.lab.model import load_start, n_params, pick_device, save, tf32_for
    from ponder.models.kv_prefix import static_rows

    out = Path(opts.out)
    device = pick_device(opts.device)
    prev = check_resume(out, opts.identity(), opts.resume, say)
    if prev and prev.get("finished"):
        return prev
    started = start_record(opts.init_from)  # before --out is made: a bad record leaves nothing
    last = get_last_checkpoint(str(out)) if out.is_dir() else None

    tokenizer, model = load_start(opts.init_from, dtype=torch.float32)
    dataset = build_dataset(opts)
    funcs, weights = reward_setup(opts.format_reward, step_weight=opts.step_reward)
    make_out(out)
    record = {
        "command": command,
        "config": opts.identity(),
        "device": device,
        "parameters": n_params(model),
        "rows": len(dataset),
        "finished": False,
        "wall_seconds": (prev or {}).get("wall_seconds", 0.0),
        **started,
    }
    write_record(out, record)

    suppress = model.generation_config.suppress_tokens
    longest = max(_prompt_tokens(tokenizer, p) for p in dataset["prompt"])
    rollouts = opts.batch_size * opts.num_generations
    rows = static_rows(model, device, rollouts, longest + opts.max_completion_length)
    if rows:  # a preallocated KV cache on a CPU: see models.kv_prefix.static_cache_pays
        _fast_rollouts(model, longest + opts.max_completion_length, rows)
    args = GRPOConfig(
        output_dir=str(out),
        max_steps=opts.steps,
        # TRL counts completions, not prompts: a step is batch_size prompts x G completions,
        # sampled at once (TRL's steps_per_generation follows gradient_accumulation_steps).
        per_device_train_batch_size=opts.batch_size * opts.num_generations // opts.micro_batches,
        gradient_accumulation_steps=opts.micro_batches,
        num_generations=opts.num_generations,
        max_completion_length=opts.max_completion_length,
        temperature=opts.temperature,
        beta=opts.beta,
        learning_rate=opts.lr,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        reward_weights=weights,
        generation_kwargs={"suppress_tokens": list(suppress)} if suppress else None,
        logging_steps=opts.log_every,
        save_strategy="steps",
        save_steps=opts.save_every,
        save_total_limit=opts.keep_checkpoints,
        seed=opts.seed,
        data_seed=opts.seed,
        bf16=False,
        tf32=tf32_for(device),
        activation_checkpointing=False,
        use_cpu=device == "cpu",
        disable_tqdm=True,
        report_to="none",
        dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[*(callbacks or []), log_last_step()],
    )
    # Our own bar replaces the Trainer's printing of every metrics dict.
    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)
    if progress:
        trainer.add_callback(_progress_callback())
    resume_from = last if opts.resume and last else None
    if resume_from:
        say(f"resuming from {Path(resume_from).name}")
    threads = torch.get_num_threads()
    if opts.threads:  # on a busy shared CPU one thread can be many times faster than all
        torch.set_num_threads(opts.threads)
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(), stopped_by_sigterm_as_exit():
            warnings.filterwarnings("ignore", message=".*(gradient|activation)_checkpointing.*")
            trainer.train(resume_from_checkpoint=resume_from)
    except BaseException:  # an interrupted session's time counts too (Ctrl-C, SIGTERM)
        spent = record["wall_seconds"] + time.perf_counter() - start
        write_record(out, {**record, "wall_seconds": round(spent, 2)})
        raise
    finally:
        torch.set_num_threads(threads)
    seconds = time.perf_counter() - start

    save(trainer.model, tokenizer, out)
    curve = reward_curve(trainer.state.log_history)
    losses = [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]
    if opts.step_reward:  # the process reward's own mean per step, beside the weighted total
        key = "rewards/steps_reward/mean"
        record["steps"] = [[h["step"], h[key]] for h in trainer.state.log_history if key in h]
    record.update(
        finished=trainer.state.global_step >= opts.steps,  # a callback may stop a run early
        global_step=trainer.state.global_step,
        resumed_from=Path(resume_from).name if resume_from else None,
        **summarize(curve),
        rewards=curve,
        final_loss=losses[-1][1] if losses else None,
        wall_seconds=round(record["wall_seconds"] + seconds, 2),
    )
    write_record(out, record)
    return record
