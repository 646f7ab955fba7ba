"""Word-level differences between prompts: exact round trips, readable spans, HTML."""

from __future__ import annotations

import itertools
import random

import pytest

from promptstudio import diffing
from promptstudio.diffing import DELETE, EQUAL, INSERT


def test_a_replaced_phrase_is_one_deletion_and_one_insertion():
    spans = diffing.diff_words("Give the cat a name.", "Give a dog a name.")
    assert spans == [(EQUAL, "Give "), (DELETE, "the cat"), (INSERT, "a dog"),
                     (EQUAL, " a name.")]


def test_added_and_removed_words():
    assert diffing.diff_words("Answer.", "Answer briefly.") == [
        (EQUAL, "Answer"), (INSERT, " briefly"), (EQUAL, ".")]
    assert diffing.diff_words("Answer very briefly.", "Answer briefly.") == [
        (EQUAL, "Answer"), (DELETE, " very"), (EQUAL, " briefly.")]


def test_short_words_in_common_do_not_chop_a_rewrite():
    spans = diffing.diff_words("Nothing like the photos, a week. Waste of money.",
                               "Nothing like the photos, a dull grey instead of blue.")
    assert spans == [(EQUAL, "Nothing like the photos, a "),
                     (DELETE, "week. Waste of money"), (INSERT, "dull grey instead of blue"),
                     (EQUAL, ".")]


def test_unchanged_lines_stay_unchanged():
    old = "Input: one\nOutput: positive\nInput: two"
    new = "Input: three\nOutput: positive\nInput: four"
    spans = diffing.diff_words(old, new)
    assert (EQUAL, "\nOutput: positive\nInput: ") in spans


def test_identical_and_empty_texts():
    assert diffing.diff_words("Same words.", "Same words.") == [(EQUAL, "Same words.")]
    assert diffing.diff_words("", "") == []
    assert diffing.diff_words("", "New.") == [(INSERT, "New.")]
    assert diffing.diff_words("Old.", "") == [(DELETE, "Old.")]


def test_contractions_stay_whole_words():
    assert diffing.tokens("don't stop") == ["don't", " ", "stop"]


@pytest.mark.parametrize("seed", range(30))
def test_spans_give_both_texts_back_exactly(seed):
    rng = random.Random(seed)
    vocabulary = ["the", "letter", "first", ",", ".", " ", "\n", "  ", "word", "Give", "é"]
    old = "".join(rng.choice(vocabulary) for _ in range(rng.randrange(0, 30)))
    new = "".join(rng.choice(vocabulary) for _ in range(rng.randrange(0, 30)))
    spans = diffing.diff_words(old, new)
    assert diffing.old_text(spans) == old
    assert diffing.new_text(spans) == new
    assert all(text for _, text in spans), "no empty spans"
    assert all(a[0] != b[0] for a, b in itertools.pairwise(spans)), "neighbours are merged"


def test_description_counts_words():
    describe = diffing.describe
    assert describe(diffing.diff_words("Answer.", "Answer in one word.")) == (
        "3 words added.")
    assert describe(diffing.diff_words("Say the letter.", "Say one letter now.")) == (
        "2 words added, 1 removed.")
    assert describe(diffing.diff_words("A b c.", "A.")) == "2 words removed."
    assert describe(diffing.diff_words("Answer.", "Answer!")) == (
        "Only punctuation or spacing changed.")
    assert describe(diffing.diff_words("Answer.", "Answer.")) == "No change."


def test_html_escapes_text_and_keeps_line_breaks():
    spans = diffing.diff_words("Use <b> tags\nplease", "Use <i> tags\nplease")
    page = diffing.to_html(spans)
    assert page.count("&lt;") == 1 and page.count("&gt;") == 1
    assert "<b>" not in page and "<i>" not in page
    assert "tags<br>please" in page
    assert diffing.DELETED_STYLE in page and diffing.INSERTED_STYLE in page


def test_closest_picks_the_most_similar_text():
    parents = ["Translate the text.", "Give the first letter of the word.", "Answer."]
    assert diffing.closest("Give the first letter of each word.", parents) == 1
    assert diffing.closest("anything", []) is None
    assert diffing.similarity("a b", "a b") == 1.0
