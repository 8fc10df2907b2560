import pytest

from ponder.verify.extract import extract_answer, last_boxed


@pytest.mark.parametrize(
    "text, answer",
    [
        ("so we get \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("\\boxed{a} then \\boxed{{x}^{2}}", "{x}^{2}"),
        ("Work...\nThe answer is: 24", "24"),
        ("Work...\nFinal answer: $42$.", "42"),
        ("Answer: **18**", "18"),
        ("Answer: 6 bolts of blue fiber are required in total", "6"),
        ("Answer: x = 5", "x = 5"),
        ("Natalia sold 48 clips...\n#### 72", "72"),
        ("first 3 apples, then 1,250 more", "1250"),
        ("no numbers here", None),
        ("", None),
    ],
)
def test_extract_answer(text, answer):
    assert extract_answer(text) == answer


def test_last_boxed_unbalanced():
    assert last_boxed("\\boxed{1 + {2}") is None
