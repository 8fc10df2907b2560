"""One optimizer step's batch, run as micro-batches of like lengths: the same step, less padding.

The idea is gradient accumulation over length-sorted micro-batches, with the loss normalized by the
whole step's token count, so the step is the one a single batch would take. transformers does it
(``train_sampling_strategy="batch_rebalance"``, its ``BatchRebalanceSampler``): it draws the step's
``batch_size`` rows at random, sorts them by length and cuts them into ``micro_batches`` groups of
balanced cost, the short rows in larger groups. Each group is padded only to its own longest row.

Why: countdown traces run from 40 to 980 tokens, so a random batch of 32 padded to its longest row
is 2.2x its real tokens (and attention, quadratic, more). Four length-sorted micro-batches hold
1.2x (``benchmarks/sft_micro_batches.py`` measures the time).

Not ``group_by_length``: that sampler makes *whole steps* of like lengths, and since a step's loss is
a mean over its tokens, a step of short traces weighs each of their tokens several times more; a
countdown run trained that way learned to stop after one move (docs/results/countdown_scaling/
sft_rerun.md). Here every step holds a random draw of rows, and every token weighs the same.

Departure from transformers: its sampler is seeded with 42 whatever the run's seed; here it takes
the run's data seed, so ``--seed`` orders the data as it does with one batch.
"""

from __future__ import annotations


def config(batch_size: int, micro_batches: int) -> dict:
    """``SFTConfig``'s arguments for a step of ``batch_size`` rows in ``micro_batches`` pieces."""
    if micro_batches == 1:
        return {"per_device_train_batch_size": batch_size}
    return {
        "per_device_train_batch_size": batch_size // micro_batches,
        "gradient_accumulation_steps": micro_batches,
        "train_sampling_strategy": "batch_rebalance",
    }


def seeded(trainer_cls):
    """``trainer_cls`` with its rebalancing sampler seeded by the run's data seed."""
    from transformers.trainer_pt_utils import BatchRebalanceSampler

    class SeededRebalance(trainer_cls):
        def _get_train_sampler(self, train_dataset=None):
            sampler = super()._get_train_sampler(train_dataset)
            if isinstance(sampler, BatchRebalanceSampler):
                sampler.seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return sampler

    SeededRebalance.__name__ = trainer_cls.__name__
    return SeededRebalance
