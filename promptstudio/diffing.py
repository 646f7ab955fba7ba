"""What an edit changed in a prompt, word by word, for people comparing two prompts.

A prompt is cut into words, runs of white space and single punctuation marks, and
`difflib` aligns the two sequences. The result is a list of spans `(op, text)`, op being
"equal", "delete" or "insert". Read in order, the equal and deleted spans give the old
prompt back and the equal and inserted spans the new one, white space and line breaks
included. A short unchanged stretch between two changes joins them, so that "the cat" →
"a dog" reads as one replacement rather than two.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from difflib import SequenceMatcher

EQUAL, DELETE, INSERT = "equal", "delete", "insert"
Span = tuple[str, str]

_TOKENS = re.compile(r"\s+|\w+(?:['’]\w+)*|[^\w\s]")
_WORDS = re.compile(r"\w+(?:['’]\w+)*")

DELETED_STYLE = "background-color:#fbd3d3; color:#8a1010; text-decoration:line-through;"
INSERTED_STYLE = "background-color:#cdf0cd; color:#0b5a0b;"


def tokens(text: str) -> list[str]:
    """Words, white-space runs and punctuation marks; joined they give `text` back."""
    return _TOKENS.findall(text)


def diff_words(old: str, new: str) -> list[Span]:
    """The spans that turn `old` into `new`, as few and as long as the alignment allows."""
    before, after = tokens(old), tokens(new)
    matcher = SequenceMatcher(a=before, b=after, autojunk=False)
    pieces: list[tuple[str, str] | tuple[str, str, str]] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            pieces.append((EQUAL, "".join(before[i1:i2])))
        else:
            pieces.append(("change", "".join(before[i1:i2]), "".join(after[j1:j2])))
    return _spans(_join_changes(pieces))


def _join_changes(pieces: list) -> list:
    """Fold an unchanged stretch into the changes on both sides of it when it is no longer
    than either of them and stays on one line, until none is left to fold: 'a week. Waste
    of money' → 'a dull grey instead of blue' reads better as one replacement than as
    three around a kept 'of'."""
    folded = True
    while folded:
        folded = False
        joined: list = []
        for piece in pieces:
            if (piece[0] == "change" and len(joined) >= 2 and joined[-2][0] == "change"
                    and joined[-1][0] == EQUAL and _foldable(joined[-1][1], joined[-2], piece)):
                between = joined.pop()[1]
                _, removed, added = joined.pop()
                piece = ("change", removed + between + piece[1], added + between + piece[2])
                folded = True
            joined.append(piece)
        pieces = joined
    return pieces


def _foldable(between: str, before: tuple, after: tuple) -> bool:
    if "\n" in between:
        return False
    size = len(between.strip())
    return size <= max(len(before[1]), len(before[2])) and size <= max(len(after[1]),
                                                                          len(after[2]))


def _spans(pieces: list) -> list[Span]:
    spans: list[Span] = []
    for piece in pieces:
        if piece[0] == EQUAL:
            _append(spans, EQUAL, piece[1])
        else:
            _append(spans, DELETE, piece[1])
            _append(spans, INSERT, piece[2])
    return spans


def _append(spans: list[Span], op: str, text: str) -> None:
    if not text:
        return
    if spans and spans[-1][0] == op:
        spans[-1] = (op, spans[-1][1] + text)
    else:
        spans.append((op, text))


def old_text(spans: Sequence[Span]) -> str:
    return "".join(text for op, text in spans if op != INSERT)


def new_text(spans: Sequence[Span]) -> str:
    return "".join(text for op, text in spans if op != DELETE)


def words_changed(spans: Sequence[Span]) -> tuple[int, int]:
    """How many words the new prompt adds and how many of the old one it removes."""
    added = sum(len(_WORDS.findall(text)) for op, text in spans if op == INSERT)
    removed = sum(len(_WORDS.findall(text)) for op, text in spans if op == DELETE)
    return added, removed


def describe(spans: Sequence[Span]) -> str:
    """The change in a few words, e.g. '3 words added, 1 removed'."""
    added, removed = words_changed(spans)
    if not added and not removed:
        if any(op != EQUAL for op, _ in spans):
            return "Only punctuation or spacing changed."
        return "No change."
    parts = [f"{added} {_words(added)} added"] if added else []
    if removed:
        parts.append(f"{removed} removed" if added else f"{removed} {_words(removed)} removed")
    return ", ".join(parts) + "."


def _words(count: int) -> str:
    return "word" if count == 1 else "words"


def to_html(spans: Sequence[Span]) -> str:
    """The spans as HTML for a rich-text view: removed words struck out on red, added
    words on green, line breaks and spacing kept."""
    parts = []
    for op, text in spans:
        escaped = html.escape(text).replace("\n", "<br>")
        if op == DELETE:
            parts.append(f'<span style="{DELETED_STYLE}">{escaped}</span>')
        elif op == INSERT:
            parts.append(f'<span style="{INSERTED_STYLE}">{escaped}</span>')
        else:
            parts.append(escaped)
    return '<div style="white-space:pre-wrap;">' + "".join(parts) + "</div>"


def similarity(a: str, b: str) -> float:
    """From 0 (nothing in common) to 1 (the same words in the same order)."""
    return SequenceMatcher(a=tokens(a), b=tokens(b), autojunk=False).ratio()


def closest(text: str, others: Sequence[str]) -> int | None:
    """The index of the text in `others` most like `text` (the first on a tie), or None."""
    if not others:
        return None
    scores = [similarity(text, other) for other in others]
    return max(range(len(others)), key=lambda i: (scores[i], -i))
