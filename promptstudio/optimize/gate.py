"""The readability gate: what a model wrote becomes a candidate only if a person can read it.

Every method's written candidates pass through here (`RunContext.add_candidate`) before any
evaluation. A small optimizer model writes a great deal that no one would call an
instruction: tags, echoes of the meta-prompt, loops, rambles that run into a story, code.
Some of it scores well by luck on a few examples, and was then shown as the best prompt. The
gate sets such text aside, each time with the rule and the reason in the run log.

The rules, in the order they are tried (`RULES`):

- **markup**: tags and template markers (`<START>`, `<LONG>`, `{input}`, `[INS]`, a line
  label of the project's template such as "Input:", HTML);
- **meta-prompt words**: words the meta-prompts use to talk *about* the task (a friend, the
  prompt, a score, a language model) or a run of three of their words with two that are not
  small words ("several inputs by"), unless the user's own instruction, task description
  or examples use them too;
- **copies a worked example**: a run of five words of a worked case the optimizer model
  was shown (the base meta-prompts' cases, `writing.worked_texts`), two of them words that
  are neither small nor the user's own: a base model continues its examples as readily as
  the user's task;
- **repetition**: a run of three words said twice;
- **length**: more than twice the start's words, with a floor of `MIN_WORD_LIMIT` so that a
  one-word start ("Answer.") does not forbid every sentence, and never more than
  `max_words` (40 unless the run says otherwise);
- **not prose**: too few letters, code or web addresses, a fragment (starting in lower
  case, ending on a comma, a colon or a word such as "the" that cannot end a sentence);
- **perplexity**: text whose mean log-probability per token under the task model is more
  than `PERPLEXITY_MARGIN` nats below the start's (its perplexity about e^2 = 7 times
  higher). Prompts the task model finds likely tend to work better for it (Gonen et al.
  2022, arXiv 2212.04037). Skipped for a model that cannot score text (some servers).

The gate judges form, not meaning: "Follow it." passes, and the choice on dev rows the
search never used (`selection`) decides whether it is any good.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

EXPLAINED = (
    "Before any candidate a model wrote is scored, it must be readable. The readability "
    "gate sets aside, with the reason in the run log: tags and template markers; words the "
    "request to the optimizer model uses to talk about the task (a friend, the prompt, a "
    "score) unless your own instruction, description or examples use them; five words in a "
    "row of a worked example the optimizer model was shown; a run of three "
    "words said twice; more than twice your instruction's words (at least 12, at most 40); "
    "text that is not a sentence (code, a web address, a fragment); and text the task model "
    "finds far less likely than your instruction. It judges form, not meaning.")
"""What the gate does, for `promptstudio methods`."""

MARKUP, META, COPY, REPETITION, LENGTH, NOT_PROSE, PERPLEXITY = (
    "markup", "meta-prompt words", "copies a worked example", "repetition", "length",
    "not prose", "perplexity")
RULES = (MARKUP, META, COPY, REPETITION, LENGTH, NOT_PROSE, PERPLEXITY)
COPIED_WORDS = 5
"""A run of this many words of a worked case, in a candidate, is a copy of it."""
MAX_WORDS = 40
MIN_WORD_LIMIT = 12
PERPLEXITY_MARGIN = 2.0

META_WORDS = ("friend", "friends", "prompt", "prompts", "score", "scores", "scored",
              "language model", "the model", "meta-prompt", "chatbot", "assistant")
"""What our meta-prompts say about the task, never in it: APE's "a friend was given an
instruction", OPRO's scores, PE2's and ProTeGi's prompt and model."""
NARRATOR_WORDS = ("i", "my", "he", "she")
"""The meta-prompts' storyteller ("I told my friend..."): an instruction says what to do,
it does not tell what someone did."""
STOPWORDS = frozenset(
    "a an and are as at be but by for from has have i in is it its of on or so than that "
    "the their them then there these they this to was we were what when which who will "
    "with you your my me our".split())
DANGLING = frozenset("a an the and or but because whose your their its my our".split())
"""Words no sentence ends on; a sentence may well end on "with" or "of"."""
_TAG = re.compile(r"<\s*/?\s*[A-Za-z_][\w\s=\"'-]{0,40}>|\{[a-z_]+\}|\[[A-Z_]{2,}\]|```")
_URL_OR_CODE = re.compile(r"https?://|www\.|\w+\.(com|org|net|io)\b|[=;{}|\\]|\w+\(\)|"
                          r"\b(def|var|int|func|println|return)\b")
_WORD = re.compile(r"[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ'’-]*")


@dataclass(frozen=True)
class SetAside:
    """Why a candidate was set aside: the rule, and its reason in words."""

    rule: str
    reason: str


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text)]


def runs_of(tokens: list[str], size: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + size]) for i in range(len(tokens) - size + 1)]


def trigrams(tokens: list[str]) -> list[tuple[str, ...]]:
    return runs_of(tokens, 3)


class Gate:
    """The rules for one run: its start, the meta-prompts its methods use, and what the
    user's own text allows."""

    def __init__(self, start: str, *, meta_prompts: Iterable[str], allowed: Iterable[str] = (),
                 labels: Iterable[str] = (), max_words: int = MAX_WORDS,
                 log_likelihood: Callable[[str], float | None] | None = None,
                 worked: Iterable[str] = ()) -> None:
        """`allowed`: the user's own texts (start, task description, examples); words and
        phrases they use are never held against a candidate. `labels`: the line labels of
        the project's template ("Input", "Output"). `log_likelihood`: mean log-probability
        per token of a text under the task model, or None when it cannot say. `worked`:
        the worked cases the optimizer model was shown, which a candidate must not copy."""
        allowed_text = " ".join([start, *allowed]).lower()
        allowed_words = set(words(allowed_text))
        self.meta_words = [w for w in (*META_WORDS, *NARRATOR_WORDS)
                           if not re.search(rf"\b{re.escape(w)}\b", allowed_text)]
        allowed_trigrams = set(trigrams(words(allowed_text)))
        self.meta_trigrams = {
            gram for text in meta_prompts
            for gram in trigrams(words(re.sub(r"\{\w+\}", " | ", text)))
            if gram not in allowed_trigrams and len(set(gram) - STOPWORDS) >= 2
            and not set(gram) <= allowed_words}
        allowed_runs = set(runs_of(words(allowed_text), COPIED_WORDS))
        self.worked_runs = {
            run for text in worked for run in runs_of(words(text), COPIED_WORDS)
            if run not in allowed_runs and len(set(run) - STOPWORDS - allowed_words) >= 2}
        self.labels = [label for label in labels if label]
        self.start_words = len(words(start))
        self.word_limit = min(max_words, max(2 * self.start_words, MIN_WORD_LIMIT))
        self.log_likelihood = log_likelihood
        self._start_likelihood: float | None = None
        self._start = start

    def check(self, text: str) -> SetAside | None:
        """None when the text may become a candidate; else why not."""
        for rule in (self._markup, self._meta, self._copy, self._repetition, self._length,
                     self._prose, self._perplexity):
            found = rule(text)
            if found is not None:
                return found
        return None

    def _markup(self, text: str) -> SetAside | None:
        tag = _TAG.search(text)
        if tag:
            return SetAside(MARKUP, f"holds the tag or marker {tag.group()!r}")
        for label in self.labels:
            if re.search(rf"(^|\s){re.escape(label)}\s*:", text, re.IGNORECASE):
                return SetAside(MARKUP, f"holds the template's label {label!r}")
        return None

    def _meta(self, text: str) -> SetAside | None:
        lowered = text.lower()
        for word in self.meta_words:
            if re.search(rf"\b{re.escape(word)}\b", lowered):
                if word in NARRATOR_WORDS:
                    return SetAside(META, f"tells what someone did ({word!r}), as the request "
                                          "to the optimizer model does, not what to do")
                return SetAside(META, f"talks about the task, not of it ({word!r}, a word "
                                      "of the request to the optimizer model)")
        for gram in trigrams(words(text)):
            if gram in self.meta_trigrams:
                return SetAside(META, f"repeats the request to the optimizer model "
                                      f"({' '.join(gram)!r})")
        return None

    def _copy(self, text: str) -> SetAside | None:
        for run in runs_of(words(text), COPIED_WORDS):
            if run in self.worked_runs:
                return SetAside(COPY, f"copies a worked example the optimizer model was "
                                      f"shown ({' '.join(run)!r})")
        return None

    def _repetition(self, text: str) -> SetAside | None:
        seen: set[tuple[str, str, str]] = set()
        for gram in trigrams(words(text)):
            if gram in seen:
                return SetAside(REPETITION, f"says {' '.join(gram)!r} twice")
            seen.add(gram)
        return None

    def _length(self, text: str) -> SetAside | None:
        count = len(words(text))
        if count > self.word_limit:
            return SetAside(LENGTH, f"{count} words, more than the {self.word_limit} "
                                    "allowed (twice the starting instruction's, at most "
                                    f"{MAX_WORDS})")
        return None

    def _prose(self, text: str) -> SetAside | None:
        tokens = words(text)
        stripped = text.strip()
        letters = sum(ch.isalpha() for ch in stripped)
        if len(tokens) < min(2, self.start_words) or not any(len(t) >= 3 for t in tokens):
            return SetAside(NOT_PROSE, "too short to be an instruction")
        if letters < 0.7 * len(stripped.replace(" ", "")):
            return SetAside(NOT_PROSE, "more numbers and symbols than words")
        code = _URL_OR_CODE.search(stripped)
        if code:
            return SetAside(NOT_PROSE, f"looks like code or a web address ({code.group()!r})")
        if stripped[0].islower():
            return SetAside(NOT_PROSE, "starts in the middle of a sentence")
        if stripped[-1] in ",:;-(" or tokens[-1] in DANGLING:
            return SetAside(NOT_PROSE, "stops in the middle of a sentence")
        return None

    def _perplexity(self, text: str) -> SetAside | None:
        if self.log_likelihood is None:
            return None
        if self._start_likelihood is None:
            self._start_likelihood = self.log_likelihood(self._start)
            if self._start_likelihood is None:
                self.log_likelihood = None
                return None
        own = self.log_likelihood(text)
        if own is None or own >= self._start_likelihood - PERPLEXITY_MARGIN:
            return None
        return SetAside(PERPLEXITY, f"the task model finds it unlikely text: "
                                    f"{own:.1f} nats a word-piece against the start's "
                                    f"{self._start_likelihood:.1f}")
