"""DeepConf confidence: token, group, lowest / bottom-10% / tail measures, the streaming window."""

from __future__ import annotations

import asyncio
import math
import random

import pytest

from ponder.models import Request, ScriptedModel, ScriptedReply
from ponder.models.base import Sample
from ponder.verify.confidence import (
    RunningGroupConfidence,
    bottom_percent_confidence,
    group_confidences,
    lowest_group_confidence,
    mean_confidence,
    tail_confidence,
    token_confidences,
)


def sample_with_confs(confs: list[float]) -> Sample:
    """A sample whose token confidences are ``confs`` (k=1: C_i = -log P_i(1))."""
    return Sample(
        text=" x" * len(confs),
        prompt_tokens=3,
        completion_tokens=len(confs),
        finish_reason="stop",
        logprobs=[-c for c in confs],
        top_logprobs=[[-c] for c in confs],
    )


def test_token_confidences_by_hand_k2():
    top = [[-0.1, -2.3], [-0.5, -1.0], [-0.01, -4.6]]
    # C_i = -(1/2) * (lp1 + lp2)
    assert token_confidences(top) == pytest.approx([1.2, 0.75, 2.305])
    s = Sample("a b c", 1, 3, "stop", logprobs=[-0.1, -0.5, -0.01], top_logprobs=top)
    assert mean_confidence(s) == pytest.approx((1.2 + 0.75 + 2.305) / 3)


def test_group_confidences_window_2():
    assert group_confidences([1.0, 2.0, 3.0, 4.0], window=2) == pytest.approx([1.5, 2.5, 3.5])
    assert group_confidences([1.0, 2.0, 3.0, 4.0], window=4) == pytest.approx([2.5])


def test_a_trace_shorter_than_the_window_is_one_group():
    assert group_confidences([1.0, 2.0, 3.0], window=2048) == pytest.approx([2.0])
    assert group_confidences([], window=4) == []
    with pytest.raises(ValueError, match="window"):
        group_confidences([1.0], window=0)


def test_lowest_bottom_percent_and_tail_on_a_hand_made_sample():
    s = sample_with_confs([3.0, 1.0, 2.0, 5.0, 4.0])  # groups (window 2): 2, 1.5, 3.5, 4.5
    assert lowest_group_confidence(s, window=2) == pytest.approx(1.5)
    assert bottom_percent_confidence(s, window=2) == pytest.approx(1.5)  # 10% of 4 -> 1 group
    assert bottom_percent_confidence(s, percent=50, window=2) == pytest.approx(1.75)
    assert bottom_percent_confidence(s, percent=100, window=2) == pytest.approx(11.5 / 4)
    assert tail_confidence(s, tail=2) == pytest.approx(4.5)
    assert tail_confidence(s, tail=100) == pytest.approx(3.0)
    assert mean_confidence(s) == pytest.approx(3.0)
    # short trace: one group, so every group measure is the mean
    assert lowest_group_confidence(s) == pytest.approx(3.0)
    assert bottom_percent_confidence(s) == pytest.approx(3.0)


def test_bottom_ten_percent_averages_the_lowest_tenth():
    confs = [float(c) for c in range(20)]  # window 1: groups are the confidences themselves
    s = sample_with_confs(confs)
    assert bottom_percent_confidence(s, percent=10, window=1) == pytest.approx(0.5)  # 0 and 1
    with pytest.raises(ValueError, match="percent"):
        bottom_percent_confidence(s, percent=0, window=1)


def test_an_empty_trace_has_the_lowest_confidence():
    s = sample_with_confs([])
    assert mean_confidence(s) == 0.0
    assert lowest_group_confidence(s, 2) == 0.0
    assert bottom_percent_confidence(s, window=2) == 0.0
    assert tail_confidence(s, 2) == 0.0


def test_running_group_confidence_matches_group_confidences():
    rng = random.Random(0)
    rows = [sorted((math.log(rng.random()) for _ in range(3)), reverse=True) for _ in range(50)]
    confs = token_confidences(rows)
    for window in (1, 2, 7, 50):
        running = RunningGroupConfidence(window)
        pushed = [running.push(row) for row in rows]
        assert pushed[: window - 1] == [None] * (window - 1)  # warm-up
        assert pushed[window - 1 :] == pytest.approx(group_confidences(confs, window))
        assert running.lowest == pytest.approx(min(group_confidences(confs, window)))
        assert running.tokens == 50
    # a stream shorter than the window: no full window, but current/lowest are the trace mean
    short = RunningGroupConfidence(100)
    assert all(short.push(row) is None for row in rows[:10])
    assert short.current == pytest.approx(group_confidences(confs[:10], 100)[0])
    assert short.lowest == pytest.approx(short.current)


def test_missing_top_logprobs_raises_with_the_hint():
    s = Sample("a b", 1, 2, "stop", logprobs=[-0.1, -0.2], top_logprobs=None)
    for measure in (
        mean_confidence,
        lowest_group_confidence,
        bottom_percent_confidence,
        tail_confidence,
    ):
        with pytest.raises(ValueError, match=r"needs top_logprobs.*Request\(top_logprobs=k\)"):
            measure(s)


def test_online_early_stopping_with_a_scripted_model():
    # confident for 4 tokens, then unsure: the window of 2 drops below 1.0 at the 6th token
    top = [[-0.01, -4.0]] * 4 + [[-0.7, -0.8]] * 4
    reply = ScriptedReply(" ".join("abcdefgh"), logprobs=[r[0] for r in top], top_logprobs=top)
    running = RunningGroupConfidence(window=2)

    def should_stop(i: int, partial: Sample) -> bool:
        value = running.push(partial.top_logprobs[-1])
        return value is not None and value < 1.0

    model = ScriptedModel([reply])
    c = asyncio.run(model.generate(Request.chat("go", top_logprobs=2), should_stop=should_stop))
    s = c.samples[0]
    assert s.finish_reason == "cancelled" and s.completion_tokens == 6
    assert token_confidences(s.top_logprobs) == pytest.approx([2.005] * 4 + [0.75] * 2)
    assert running.lowest == pytest.approx(0.75)
