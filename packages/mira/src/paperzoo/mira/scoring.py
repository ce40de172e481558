"""MIRA's scoring rules: ``<answer>`` extraction, exact match, the two special tasks, the judge
verdict, pass@k and majority vote.

From the official ``acc.py`` (aiming-lab/MIRA): the answer is the first ``<answer>...</answer>``
(across lines), stripped; no tag is wrong; it is right when it equals the gold answer after
strip + lowercase; an optional LLM judge re-checks the answers that fail (never a missing tag,
never ``rolling_dice_two``). ``rolling_dice_two``'s answer holds both parts: the first word
red/black/same and the last integer, both must match. pass@k and majority vote are the paper's
(the official code has neither); the estimator and the tie rule are documented below.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable, Sequence

__all__ = [
    "extract_answer",
    "judge_prompt",
    "majority_vote",
    "normalize",
    "parse_two_answers",
    "parse_verdict",
    "pass_at_k",
    "two_answers_match",
]

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
_PATH_WORD = re.compile(r"\b(red|black|same)\b", re.IGNORECASE)
_INTEGER = re.compile(r"\d+")


def extract_answer(response: str) -> str | None:
    """The stripped text of the first ``<answer>...</answer>`` in ``response`` (it may span
    lines; tags are case-sensitive, as in the official regex); None when there is none."""
    match = _ANSWER.search(response or "")
    return match.group(1).strip() if match else None


def normalize(text: object) -> str:
    """The exact-match form: ``str(text).strip().lower()`` (numbers as ``str`` gives them)."""
    return str(text).strip().lower()


def parse_two_answers(answer: str) -> tuple[str | None, int | None]:
    """``rolling_dice_two``: (the first of red/black/same as a word, lowercase; the last
    integer), each None when absent."""
    word = _PATH_WORD.search(answer or "")
    numbers = _INTEGER.findall(answer or "")
    return (word.group(1).lower() if word else None, int(numbers[-1]) if numbers else None)


def two_answers_match(answer: str, answer1: object, answer2: object) -> bool:
    """Both parts of a ``rolling_dice_two`` answer right (answer2 compared as an integer)."""
    path, total = parse_two_answers(answer)
    try:
        gold_total = int(str(answer2).strip())
    except ValueError:
        return False
    return path is not None and path == normalize(answer1) and total == gold_total


def judge_prompt(question: str, gold: str, response: str) -> str:
    """What the judge is asked: the official judge prompt (``acc.py``'s ``judge_with_llm``),
    verbatim with its indentation, in ``prompts/judge.txt``."""
    from importlib import resources

    template = resources.files("paperzoo.mira").joinpath("prompts/judge.txt").read_text()
    return template.format(question=question, ground_truth=gold, model_response=response)


def parse_verdict(text: str) -> bool:
    """The judge's reply: ``Correct`` -> True, ``Incorrect`` -> False (case, surrounding
    whitespace, quotes, ``*`` and a final period ignored); anything else raises ValueError, so
    that :func:`paperzoo.eval.ask_parsed` asks again."""
    word = text.strip().strip("*\"'`").strip().rstrip(".").strip().lower()
    if word == "correct":
        return True
    if word == "incorrect":
        return False
    raise ValueError(f"expected 'Correct' or 'Incorrect', got {text.strip()[:60]!r}")


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from ``n`` samples of which ``c`` are right:
    1 - C(n - c, k) / C(n, k), the probability that ``k`` of the ``n`` drawn without
    replacement hold a right one (Chen et al. 2021). Needs 1 <= k <= n, 0 <= c <= n."""
    if not (1 <= k <= n and 0 <= c <= n):
        raise ValueError(f"pass@k needs 1 <= k <= n and 0 <= c <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def majority_vote(votes: Sequence[Hashable | None]) -> int | None:
    """The index of the sample whose answer wins the vote, or None when no sample voted.

    ``votes[i]`` is sample i's normalized answer; None (no ``<answer>`` tag) casts no vote.
    The answer given most often wins; a tie goes to the tied answer that appears first in
    sample order (so one sample is its own majority). The index returned is that answer's
    first sample, whose correctness is the vote's.
    """
    counts: dict[Hashable, int] = {}
    first: dict[Hashable, int] = {}
    for i, vote in enumerate(votes):
        if vote is None:
            continue
        counts[vote] = counts.get(vote, 0) + 1
        first.setdefault(vote, i)
    if not counts:
        return None
    best = max(counts.values())
    return min(first[v] for v, count in counts.items() if count == best)
