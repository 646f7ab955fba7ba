"""Small workflow helpers that the window and the command line share."""

from __future__ import annotations

from promptstudio.dataio import Row
from promptstudio.workflows import MAX_SUGGESTED_LABELS, suggest_scoring


def rows(*outputs: str) -> list[Row]:
    return [Row(f"input {i}", output, (output,), "train") for i, output in enumerate(outputs)]


def test_a_few_answers_that_come_back_suggest_labels_most_common_first():
    assert suggest_scoring(rows("no", "yes", "yes", "no", "yes", " yes ")) == (
        "label", ("yes", "no"))


def test_free_answers_suggest_loose_matching():
    assert suggest_scoring(rows("Paris", "Rome", "Oslo")) == ("normalized_exact", ())
    assert suggest_scoring(rows("a", "a", "b")) == ("normalized_exact", ()), (
        "an answer seen once may be free text")
    assert suggest_scoring(rows("same", "same")) == ("normalized_exact", ())
    assert suggest_scoring([]) == ("normalized_exact", ())


def test_too_many_distinct_answers_are_not_labels():
    many = [str(i) for i in range(MAX_SUGGESTED_LABELS + 1)] * 2
    assert suggest_scoring(rows(*many))[0] == "normalized_exact"
