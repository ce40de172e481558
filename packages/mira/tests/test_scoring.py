"""Extraction, exact match, the two-answer task, the verdict, pass@k and majority vote."""

from __future__ import annotations

import itertools
import random

import pytest

from paperzoo.mira.scoring import (
    extract_answer,
    majority_vote,
    normalize,
    parse_two_answers,
    parse_verdict,
    pass_at_k,
    two_answers_match,
)


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        ("so <answer>42</answer>", "42"),
        ("<answer>\n  B \n</answer>", "B"),  # spans lines, stripped
        ("<answer>1</answer> then <answer>2</answer>", "1"),  # the first tag
        ("<answer></answer>", ""),
        ("the answer is 42", None),  # no tag: wrong
        ("<answer>42", None),  # unclosed
        ("<ANSWER>42</ANSWER>", None),  # the official regex is case-sensitive
        ("", None),
    ],
)
def test_extract_answer(response, expected):
    assert extract_answer(response) == expected


def test_exact_match_is_strip_and_lowercase():
    assert normalize(" Clockwise ") == normalize("clockwise") == "clockwise"
    assert normalize(5) == "5" and normalize("5.0") != normalize(5)


@pytest.mark.parametrize(
    ("answer", "parsed", "right"),
    [
        ("Red, 10", ("red", 10), True),
        ("The red die, total 10", ("red", 10), True),
        ("red: 3 + 7 = 10", ("red", 10), True),  # the last integer
        ("black, 10", ("black", 10), False),
        ("red, 9", ("red", 9), False),
        ("reddish 10", (None, 10), False),  # a whole word
        ("same", ("same", None), False),
        ("black or red, 10", ("black", 10), False),  # the first word
    ],
)
def test_rolling_dice_two_needs_both_parts(answer, parsed, right):
    assert parse_two_answers(answer) == parsed
    assert two_answers_match(answer, "red", 10) is right
    assert two_answers_match(answer, "Red", "10") is right


@pytest.mark.parametrize("text", ["Correct", " correct.", "**Correct**", "'CORRECT'"])
def test_verdict_correct(text):
    assert parse_verdict(text) is True


def test_verdict_incorrect_and_unreadable():
    assert parse_verdict("Incorrect.") is False
    for text in ("", "Correct, because", "not correct", "Yes"):
        with pytest.raises(ValueError, match="Correct' or 'Incorrect"):
            parse_verdict(text)


def brute_force_pass_at_k(outcomes: list[bool], k: int) -> float:
    """The share of the k-subsets of the samples that hold a right one."""
    subsets = list(itertools.combinations(outcomes, k))
    return sum(any(s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_pass_at_k_equals_enumeration_over_subsets(n):
    rng = random.Random(n)
    for c in range(n + 1):
        outcomes = [True] * c + [False] * (n - c)
        rng.shuffle(outcomes)
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(outcomes, k))
    assert pass_at_k(n, 0, 1) == 0.0 and pass_at_k(n, n, 1) == 1.0


def test_pass_at_1_is_the_fraction_right_and_bad_k_is_refused():
    assert pass_at_k(8, 3, 1) == pytest.approx(3 / 8)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        pass_at_k(4, 1, 5)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_majority_vote_plurality_and_abstentions():
    assert majority_vote(["3", "4", "4"]) == 1  # index of the winner's first sample
    assert majority_vote([None, "4", None, "3", "4"]) == 1
    assert majority_vote([None, None, "7"]) == 2  # no tag casts no vote
    assert majority_vote([None, None]) is None and majority_vote([]) is None


def test_majority_vote_ties_go_to_the_answer_seen_first():
    assert majority_vote(["3", "4"]) == 0
    assert majority_vote(["4", "3"]) == 0
    assert majority_vote(["a", "b", "b", "a", "c"]) == 0  # a and b both twice: a came first
    assert majority_vote(["c", "b", "a", "a", "b"]) == 1  # b (index 1) before a (index 2)
    assert majority_vote(["x"]) == 0  # one sample is its own majority
