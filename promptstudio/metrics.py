"""Metrics: how well a parsed answer agrees with the accepted answers of an example.

A metric compares the answer with one accepted answer and gives a number from 0 to 1.
An example may list several accepted answers ("NYC", "New York City"); it scores the
best of them, so adding an alternative never lowers a score.
"""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """A way of scoring answers, with the words the GUI uses to describe it."""

    id: str
    name: str
    explanation: str
    needs_labels: bool = False


METRICS: dict[str, Metric] = {
    metric.id: metric
    for metric in (
        Metric(
            "exact",
            "Exact match",
            "The answer must be exactly an accepted answer, letter for letter "
            "(spaces at the start and end are ignored).",
        ),
        Metric(
            "normalized_exact",
            "Loose match",
            "The answer must be an accepted answer, ignoring capital letters, "
            "punctuation and extra spaces.",
        ),
        Metric(
            "contains",
            "Contains",
            "An accepted answer must appear as whole words somewhere in the answer, "
            "ignoring capital letters and punctuation.",
        ),
        Metric(
            "f1",
            "Word overlap (F1)",
            "Partial credit for the words the answer shares with an accepted answer: "
            "1 for the same words, 0 for none in common.",
        ),
        Metric(
            "regex",
            "Pattern",
            "Each accepted answer is a pattern (a regular expression) that the whole "
            "answer must match.",
        ),
        Metric(
            "set",
            "Same items",
            "The answer must list the same items as an accepted answer, in any order; "
            "items are separated by commas or spaces.",
        ),
        Metric(
            "numeric",
            "Number",
            "The first number in the answer must equal the accepted number "
            '("1,000" and "1000" count as the same).',
        ),
        Metric(
            "label",
            "Label",
            "The model picks whichever of the project's labels it finds most likely; "
            "it scores 1 when that label is an accepted answer.",
            needs_labels=True,
        ),
    )
}


def get_metric(metric_id: str) -> Metric:
    try:
        return METRICS[metric_id]
    except KeyError:
        known = ", ".join(METRICS)
        raise ValueError(f'Unknown metric "{metric_id}". Known metrics: {known}.') from None


def lacks_labels(metric_id: str, labels: Sequence[str]) -> bool:
    """Whether the metric chooses among labels and is given fewer than the two it needs."""
    return get_metric(metric_id).needs_labels and len(labels) < 2


def normalize(text: str) -> str:
    """`text` compared loosely: case-folded, without punctuation, single-spaced.

    Unicode compatibility forms are unified first (full-width letters, ligatures,
    composed and decomposed accents) and punctuation is any Unicode "P" category, so
    the same rules hold in every language. Punctuation is deleted rather than turned
    into a space, as in SQuAD: "U.S.A." and "USA" agree, and so do "don't" and "dont".
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(char for char in folded if not unicodedata.category(char).startswith("P"))
    return " ".join(kept.split())


def _exact(prediction: str, answer: str) -> float:
    return float(prediction.strip() == answer.strip())


def _normalized_exact(prediction: str, answer: str) -> float:
    return float(normalize(prediction) == normalize(answer))


_UNSPACED_SCRIPTS = ("THAI", "LAO", "KHMER", "MYANMAR")


def _is_unspaced(char: str) -> bool:
    """Whether `char` belongs to a script written without spaces between words."""
    wide = unicodedata.east_asian_width(char) in ("W", "F")
    return wide or unicodedata.name(char, "").startswith(_UNSPACED_SCRIPTS)


def _is_word_char(char: str) -> bool:
    if _is_unspaced(char):
        return False
    return char.isalnum() or unicodedata.category(char).startswith("M")


def _is_word_boundary(text: str, index: int) -> bool:
    if index in (0, len(text)):
        return True
    return not (_is_word_char(text[index - 1]) and _is_word_char(text[index]))


def _contains(prediction: str, answer: str) -> float:
    """Whole-word containment, so that "no" is not found inside "know".

    In scripts written without spaces (Chinese, Japanese, Thai, ...) any position counts
    as a word boundary.
    """
    needle = normalize(answer)
    haystack = normalize(prediction)
    if not needle:
        return 0.0
    start = haystack.find(needle)
    while start != -1:
        if _is_word_boundary(haystack, start) and _is_word_boundary(haystack, start + len(needle)):
            return 1.0
        start = haystack.find(needle, start + 1)
    return 0.0


def _f1(prediction: str, answer: str) -> float:
    """SQuAD's token F1 over the words of the normalized texts."""
    predicted = normalize(prediction).split()
    expected = normalize(answer).split()
    if not predicted or not expected:
        return float(predicted == expected)
    shared = sum((Counter(predicted) & Counter(expected)).values())
    if shared == 0:
        return 0.0
    precision = shared / len(predicted)
    recall = shared / len(expected)
    return 2 * precision * recall / (precision + recall)


@functools.lru_cache(maxsize=1024)
def _answer_pattern(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as error:
        raise ValueError(
            f'The accepted answer "{pattern}" is not a valid regular expression: {error}.'
        ) from None


def _regex(prediction: str, answer: str) -> float:
    return float(_answer_pattern(answer).fullmatch(prediction.strip()) is not None)


_ITEM_SEPARATORS = re.compile(r"[\s,\uff0c\u3001\u060c]+")


def _items(text: str) -> set[str]:
    """The items of a list such as "red, green blue", normalized."""
    return {item for item in map(normalize, _ITEM_SEPARATORS.split(text)) if item}


def _same_set(prediction: str, answer: str) -> float:
    return float(_items(prediction) == _items(answer))


_NUMBER = re.compile(
    r"(?P<sign>(?<!\w)[-+\u2212])?"
    r"(?P<digits>\d{1,3}(?:,\d{3})+(?!\d)(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?P<exponent>[eE][-+]?\d+)?"
)


def first_number(text: str) -> float | None:
    """The first number written in `text`, such as "-3.5", "1,000" or "1e3"; else None.

    A comma is read as a thousands separator only before groups of three digits, so
    "3,5" is the number 3 followed by the number 5.
    """
    match = _NUMBER.search(text)
    if match is None:
        return None
    sign, digits, exponent = match.group("sign", "digits", "exponent")
    value = float(digits.replace(",", "") + (exponent or ""))
    return -value if sign in ("-", "\u2212") else value


def _same_number(prediction: str, answer: str, *, tolerance: float) -> float:
    predicted = first_number(prediction)
    expected = first_number(answer)
    if predicted is None or expected is None:
        return 0.0
    return float(math.isclose(predicted, expected, rel_tol=1e-9, abs_tol=tolerance))


_AGREEMENT: dict[str, Callable[[str, str], float]] = {
    "exact": _exact,
    "normalized_exact": _normalized_exact,
    "contains": _contains,
    "f1": _f1,
    "regex": _regex,
    "set": _same_set,
    "label": _normalized_exact,
}


def score(
    metric_id: str, prediction: str, answers: Sequence[str], *, tolerance: float = 1e-6
) -> float:
    """How well `prediction` agrees with the best of `answers`, from 0.0 to 1.0.

    `tolerance` is the absolute difference the "numeric" metric forgives. For "label",
    `prediction` is the label the evaluator chose; it is scored like "normalized_exact".
    Every accepted answer is looked at, so a broken pattern is reported even when an
    earlier one matched. No accepted answers score 0.0.
    """
    if isinstance(answers, str):
        raise TypeError("answers must be a list of accepted answers, not a single string")
    metric = get_metric(metric_id)
    if metric.id == "numeric":
        agreement = functools.partial(_same_number, tolerance=tolerance)
    else:
        agreement = _AGREEMENT[metric.id]
    return max((agreement(prediction, answer) for answer in answers), default=0.0)
