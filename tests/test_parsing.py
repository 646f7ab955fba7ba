from __future__ import annotations

import dataclasses

import pytest

from promptstudio.parsing import MODES, OutputParser

REPLIES = [
    "",
    "   ",
    "Oslo",
    " Oslo\nInput: the next made-up question",
    "\nOslo\n",
    "\n\nOslo\n\nInput: more invented text",
    "  \n\t\n  Oslo  \r\nBergen",
    "Oslo\u2028Bergen",
    "The answer is 17.\nOr maybe 18.",
    "\n\nanswer: (B) a lemon\n",
    "Line one\nline two\n\nline four",
]


@pytest.mark.parametrize(
    ("mode", "raw", "expected"),
    [
        ("first_line", "Oslo", "Oslo"),
        ("first_line", "  Oslo  ", "Oslo"),
        ("first_line", "Oslo\nInput: an invented follow-up", "Oslo"),
        ("first_line", "\nOslo", "Oslo"),
        ("first_line", "\n\n\nOslo\nBergen", "Oslo"),
        ("first_line", " \t \n   \n  Oslo is the capital  \nBergen", "Oslo is the capital"),
        ("first_line", "Oslo\r\nBergen", "Oslo"),
        ("first_line", "\r\n\r\nOslo\r\n", "Oslo"),
        ("first_line", "Oslo\u2028Bergen", "Oslo"),
        ("first_line", "", ""),
        ("first_line", "  \n \n\t", ""),
        ("first_line", "Zürich — 東京\nnext", "Zürich — 東京"),
        ("full", "  Oslo\nand Bergen  \n", "Oslo\nand Bergen"),
        ("full", "\n\nOslo\n\nBergen\n", "Oslo\n\nBergen"),
        ("full", "", ""),
        ("full", " \n ", ""),
    ],
)
def test_parse_by_mode(mode: str, raw: str, expected: str) -> None:
    assert OutputParser(mode=mode).parse(raw) == expected


@pytest.mark.parametrize(
    ("mode", "regex", "raw", "expected"),
    [
        ("first_line", r"\d+", "I count 12 ducks and 3 geese", "12"),
        ("first_line", r"answer: (\w+)", "My answer: maybe, final", "maybe"),
        ("first_line", r"answer: (\w+) (\w+)", "answer: two words", "two"),
        ("first_line", r"answer: (?P<word>\w+)", "answer: named", "named"),
        ("first_line", r"\(([A-D])\)", "\n\nI pick (C) because (A) is wrong", "C"),
        ("first_line", r"answer:(.*)", "answer:   padded   ", "padded"),
        ("first_line", r"yes|no", "The reply is No.", ""),
        ("first_line", r"(?i)yes|no", "The reply is No.", "No"),
        ("first_line", r"(x)?y", "only y here", ""),
        ("first_line", r"\d+", "no digits on this line\n42", ""),
        ("full", r"\d+", "no digits on this line\n42", "42"),
        ("full", r"^Final: (.+)$", "Thinking...\nFinal: done", ""),
        ("full", r"(?m)^Final: (.+)$", "Thinking...\nFinal: done\n", "done"),
        ("full", r"\d+", "", ""),
        ("first_line", r"", "empty pattern means no pattern", "empty pattern means no pattern"),
        ("first_line", None, "no pattern", "no pattern"),
    ],
)
def test_parse_with_regex(mode: str, regex: str | None, raw: str, expected: str) -> None:
    assert OutputParser(mode=mode, regex=regex).parse(raw) == expected


def test_braces_and_unicode_pass_through() -> None:
    assert OutputParser().parse('\n{"city": "Malmö"}\nmore') == '{"city": "Malmö"}'


def test_empty_regex_is_stored_as_none() -> None:
    assert OutputParser(regex="").regex is None
    assert OutputParser(regex="") == OutputParser()


@pytest.mark.parametrize("regex", ["(unclosed", "[a-", "*stars", "(?P<x>a)(?P<x>b)"])
def test_bad_regex_is_a_clear_value_error(regex: str) -> None:
    parser = OutputParser(regex=regex)
    with pytest.raises(ValueError, match="not a valid regular expression") as caught:
        parser.validate()
    assert regex in str(caught.value)
    with pytest.raises(ValueError, match="not a valid regular expression"):
        parser.parse("anything")


@pytest.mark.parametrize("mode", ["firstline", "all", ""])
def test_unknown_mode_is_a_value_error(mode: str) -> None:
    with pytest.raises(ValueError, match="first_line"):
        OutputParser(mode=mode).validate()
    with pytest.raises(ValueError, match="Unknown answer mode"):
        OutputParser(mode=mode).parse("x")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("regex", [None, r"\d+"])
def test_valid_parsers_validate(mode: str, regex: str | None) -> None:
    OutputParser(mode=mode, regex=regex).validate()


def _cut_at_first_stop(reply: str, stops: tuple[str, ...]) -> str:
    """What a backend returns when it stops at the earliest stop string."""
    cuts = [reply.find(stop) for stop in stops if stop in reply]
    return reply[: min(cuts)] if cuts else reply


@pytest.mark.parametrize("parser", [OutputParser(), OutputParser("full"), OutputParser(regex="O.")])
def test_no_stop_sequence_is_offered_since_none_is_safe(parser: OutputParser) -> None:
    """Any stop string can cut a reply before its answer (the next test shows how), so a
    parser offers none; backends stop when `is_settled` says so instead."""
    assert parser.stop_sequences() == ()


@pytest.mark.parametrize("stop", ["\n", "\n\n", "\nInput:"])
def test_why_newline_stops_are_unsafe(stop: str) -> None:
    reply = stop + "Oslo\n\nInput: another"
    assert OutputParser().parse(_cut_at_first_stop(reply, (stop,))) != OutputParser().parse(reply)


@pytest.mark.parametrize(
    ("text", "settled"),
    [
        ("", False),
        ("\n\n", False),
        ("  \n\t", False),
        ("Osl", False),
        ("Oslo", False),
        ("Oslo\n", True),
        ("\n\nOslo\n", True),
        ("Oslo\r", True),
        ("Oslo\u2028", True),
        ("  \nOslo  \nmore", True),
    ],
)
def test_is_settled_in_first_line_mode(text: str, settled: bool) -> None:
    assert OutputParser().is_settled(text) is settled
    assert OutputParser(regex=r"\w+").is_settled(text) is settled


@pytest.mark.parametrize("text", ["", "Oslo", "Oslo\n", "Oslo\n\nBergen\n"])
def test_full_mode_is_never_settled(text: str) -> None:
    assert OutputParser("full").is_settled(text) is False


@pytest.mark.parametrize("parser", [OutputParser(), OutputParser(regex=r"\d+|O\w+")])
@pytest.mark.parametrize("reply", REPLIES)
def test_stopping_when_settled_keeps_the_answer(parser: OutputParser, reply: str) -> None:
    for end in range(len(reply) + 1):
        if parser.is_settled(reply[:end]):
            assert parser.parse(reply[:end]) == parser.parse(reply)


@pytest.mark.parametrize(
    "parser",
    [OutputParser(), OutputParser("full"), OutputParser("first_line", r"(\d+)\s*€")],
)
def test_dict_round_trip(parser: OutputParser) -> None:
    data = parser.to_dict()
    assert set(data) == {"mode", "regex"}
    assert OutputParser.from_dict(data) == parser


def test_from_dict_fills_in_defaults() -> None:
    assert OutputParser.from_dict({}) == OutputParser()
    assert OutputParser.from_dict({"mode": "full"}) == OutputParser("full", None)


@pytest.mark.parametrize("data", [{"mode": 3}, {"mode": None}, {"regex": 5}, {"regex": ["a"]}])
def test_from_dict_rejects_wrong_types(data: dict) -> None:
    with pytest.raises(ValueError, match="must be text"):
        OutputParser.from_dict(data)


def test_from_dict_loads_a_broken_pattern_for_the_user_to_fix() -> None:
    parser = OutputParser.from_dict({"mode": "first_line", "regex": "(oops"})
    with pytest.raises(ValueError, match=r"\(oops"):
        parser.validate()


def test_parser_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        OutputParser().mode = "full"  # type: ignore[misc]


@pytest.mark.parametrize("reply", [
    "Input: With rain <IN>",
    "Input: cat\nOutput: cats",
    "Put the answer after <INS",
    "Write the {input} twice.",
])
def test_model_replies_that_echo_the_template_are_not_instructions(reply):
    from promptstudio.parsing import clean_instruction

    instruction, reason = clean_instruction(reply)
    assert instruction is None and "template" in reason


def test_a_clean_instruction_survives_numbering_quotes_and_a_runaway_example():
    from promptstudio.parsing import clean_instruction

    reply = '1. "Write the plural of the noun."\nInput: cat\nOutput: cats'
    instruction, _ = clean_instruction(reply)
    assert instruction == "Write the plural of the noun."
