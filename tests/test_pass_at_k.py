"""pass@k (Chen et al. 2021's unbiased estimator) against values computed by hand, and the report's
pass@k table for configurations with several samples (seeds) per problem."""

from __future__ import annotations

import math

import pytest

from ponder.bench.report import write_report
from ponder.bench.stats import pass_at_k, pass_at_k_ks
from ponder.bench.store import ResultRow, Store

MODEL = {"backend": "scripted", "name": "scripted"}


@pytest.mark.parametrize(
    "n, c, k, expected",
    [
        (5, 2, 1, 2 / 5),  # pass@1 is the share correct
        (5, 2, 2, 1 - 3 / 10),  # 1 - C(3,2)/C(5,2)
        (4, 1, 2, 1 - 3 / 6),  # 1 - C(3,2)/C(4,2)
        (10, 1, 5, 1 - 126 / 252),  # 1 - C(9,5)/C(10,5)
        (8, 3, 4, 1 - 5 / 70),  # 1 - C(5,4)/C(8,4)
        (4, 0, 2, 0.0),  # nothing correct
        (4, 3, 2, 1.0),  # fewer wrong samples than k: every draw holds a correct one
        (4, 4, 4, 1.0),
    ],
)
def test_pass_at_k_matches_hand_computed_values(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected, abs=1e-12)


def test_pass_at_k_is_stable_where_the_binomials_are_huge():
    # C(2000, 1000) has 600 digits: as floats the ratio would overflow; the product form does not
    assert pass_at_k(2000, 1, 1000) == pytest.approx(0.5)
    exact = 1 - math.comb(1997, 1000) / math.comb(2000, 1000)  # Python's ints, exact
    assert pass_at_k(2000, 3, 1000) == pytest.approx(exact)
    for bad in [(4, 5, 1), (4, 1, 0), (4, 1, 5)]:
        with pytest.raises(ValueError, match="pass@k needs"):
            pass_at_k(*bad)


def test_k_is_1_and_the_powers_of_2_up_to_n():
    assert pass_at_k_ks(1) == [1]
    assert pass_at_k_ks(3) == [1, 2]
    assert pass_at_k_ks(8) == [1, 2, 4, 8]
    assert pass_at_k_ks(9) == [1, 2, 4, 8]


def add(store: Store, strategy: str, pid: str, seed: int, correct: bool) -> None:
    store.add(ResultRow("r", pid, strategy, 0, seed, "x", None, correct, "", 10, 10, 1, 0.1, []))


def test_the_report_shows_pass_at_k_for_configurations_with_several_samples(tmp_path):
    store = Store(tmp_path / "bench.db")
    config = {"task": "humaneval", "model": "scripted", "strategies": ["code", "cot"],
              "budgets": [0], "seeds": [0, 1, 2, 3]}  # fmt: skip
    store.open_run("r", config, "0.1.0", MODEL)
    for seed, (p1, p2) in enumerate([(True, True), (False, True), (False, True), (False, True)]):
        add(store, "code", "HumanEval/1", seed, p1)  # 1 of 4 right
        add(store, "code", "HumanEval/2", seed, p2)  # 4 of 4 right
    add(store, "cot", "HumanEval/1", 0, True)  # one sample: no pass@k for it
    add(store, "cot", "HumanEval/2", 0, False)
    md = write_report(store, ["r"], tmp_path / "out").markdown.read_text()
    header = "| configuration | problems | samples per problem | pass@1 % | pass@2 % | pass@4 % |"
    assert header in md
    # pass@1 = (1/4 + 1) / 2; pass@2 = ((1 - C(3,2)/C(4,2)) + 1) / 2; pass@4 = (1 + 1) / 2
    assert "| code | 2 | 4 | 62.5 | 75.0 | 100.0 |" in md
    assert "| cot | 2 | 1 |" not in md and "unbiased estimator" in md


def test_no_pass_at_k_table_with_one_sample_per_problem(tmp_path):
    store = Store(tmp_path / "bench.db")
    store.open_run("r", {"task": "humaneval", "strategies": ["cot"]}, "0.1.0", MODEL)
    add(store, "cot", "HumanEval/1", 0, True)
    add(store, "cot", "HumanEval/2", 0, False)
    md = write_report(store, ["r"], tmp_path / "out").markdown.read_text()
    assert "pass@" not in md
