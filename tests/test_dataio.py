"""Tests for reading and writing example rows, and for the messages users see when a file is bad."""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from task_data import data_file

from promptstudio.dataio import (
    MAX_FILE_BYTES,
    DataError,
    Row,
    parse_pasted,
    read_table,
    split_rows,
    to_rows,
    write_rows,
)

GREETINGS = [
    Row("Say good morning in French.", "bonjour", ("bonjour", "bonjour !"), "train"),
    Row("Say thank you in Spanish.", "gracias", ("gracias",), "dev"),
    Row('A line with "quotes", a comma\nand a second line.', "two lines", ("two lines",), None),
    Row("Tabs\tinside the input", "yes | no", ("yes | no", "yes"), "test"),
    Row("Accents: crème brûlée, naïve, Zürich", "déjà vu", ("déjà vu", "deja vu"), None),
    Row("An old Mac line end\rand a Windows one\r\nin between", "[bracketed]", ("[bracketed]",)),
]


def write_bytes(folder: Path, name: str, content: bytes) -> Path:
    path = folder / name
    path.write_bytes(content)
    return path


def write_text(folder: Path, name: str, content: str) -> Path:
    return write_bytes(folder, name, content.encode("utf-8"))


def error_from(action: Callable[..., object], *args: object, **kwargs: object) -> DataError:
    """The DataError that action raises, for asserting on what the user would read."""
    with pytest.raises(DataError) as caught:
        action(*args, **kwargs)
    return caught.value


# Files that cannot be read at all


def test_empty_file_says_it_is_empty(tmp_path: Path) -> None:
    path = write_bytes(tmp_path, "nothing.csv", b"")
    err = error_from(read_table, path)
    assert "'nothing.csv'" in str(err)
    assert "empty" in str(err)
    assert "Choose a file that holds your examples" in str(err)
    assert err.path == str(path)


def test_file_of_blank_lines_is_empty(tmp_path: Path) -> None:
    err = error_from(read_table, write_text(tmp_path, "blank.jsonl", "\n   \n\t\n"))
    assert "'blank.jsonl'" in str(err)
    assert "empty" in str(err)


def test_header_without_rows_asks_for_examples(tmp_path: Path) -> None:
    err = error_from(read_table, write_text(tmp_path, "header.csv", "input,output\n\n"))
    assert "'header.csv'" in str(err)
    assert "column names on line 1 but no examples" in str(err)
    assert "Add one example per row" in str(err)


def test_png_renamed_to_csv_is_not_text(tmp_path: Path) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64)
    err = error_from(read_table, write_bytes(tmp_path, "holiday.csv", png))
    assert "'holiday.csv'" in str(err)
    assert "not a text file" in str(err)
    assert "PNG image" in str(err)
    assert "CSV UTF-8" in str(err)


def test_random_bytes_are_not_text(tmp_path: Path) -> None:
    noise = random.Random(7).randbytes(4096)
    err = error_from(read_table, write_bytes(tmp_path, "noise.jsonl", noise))
    assert "'noise.jsonl'" in str(err)
    assert "binary data" in str(err)
    assert "saved as text" in str(err)


def test_latin1_file_names_the_line_and_suggests_utf8(tmp_path: Path) -> None:
    content = "input,output\nOrder a coffee,yes\nOrder a café au lait,yes\n".encode("latin-1")
    err = error_from(read_table, write_bytes(tmp_path, "menu.csv", content))
    assert "'menu.csv', line 3" in str(err)
    assert "not saved as UTF-8" in str(err)
    assert "just after 'Order a caf'" in str(err)
    assert "save it again as UTF-8" in str(err)
    assert err.line == 3


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    content = "\ufeffinput,output\ncafé,coffee\n".encode()
    table = read_table(write_bytes(tmp_path, "excel.csv", content))
    assert table.columns == ["input", "output"]
    assert to_rows(table).rows == [Row("café", "coffee", ("coffee",))]


def test_utf16_file_asks_for_utf8(tmp_path: Path) -> None:
    content = "input\toutput\nhello\tworld\n".encode("utf-16")
    err = error_from(read_table, write_bytes(tmp_path, "unicode.txt", content))
    assert "'unicode.txt'" in str(err)
    assert "UTF-16" in str(err)
    assert "save it again as UTF-8" in str(err)


def test_nul_byte_in_text_names_the_line(tmp_path: Path) -> None:
    content = "input,output\nthe first question,one\nthe second\x00 question,two\nlast,three\n"
    err = error_from(read_table, write_text(tmp_path, "damaged.csv", content))
    assert "'damaged.csv', line 3" in str(err)
    assert "NUL character" in str(err)
    assert "Delete that character" in str(err)
    assert err.line == 3


def test_file_over_the_size_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as stream:
        stream.truncate(200 * 1024 * 1024)
    err = error_from(read_table, path)
    assert "'huge.csv'" in str(err)
    assert "200 MB" in str(err)
    assert "100 MB" in str(err)
    assert "Split it into smaller files" in str(err)
    assert MAX_FILE_BYTES == 100 * 1024 * 1024


def test_size_limit_can_be_lowered(tmp_path: Path) -> None:
    path = write_text(tmp_path, "small.csv", "input,output\n" + "question,answer\n" * 200)
    err = error_from(read_table, path, max_bytes=1024)
    assert "more than the 1 KB that can be imported" in str(err)


def test_missing_file_names_the_folder(tmp_path: Path) -> None:
    err = error_from(read_table, tmp_path / "lost.csv")
    assert "'lost.csv'" in str(err)
    assert "no such file" in str(err)
    assert str(tmp_path) in str(err)
    assert "choose the file again" in str(err)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    err = error_from(read_table, tmp_path)
    assert "folder, not a file" in str(err)


def test_spreadsheet_extension_asks_for_csv(tmp_path: Path) -> None:
    err = error_from(read_table, write_bytes(tmp_path, "book.xlsx", b"PK\x03\x04"))
    assert "'book.xlsx'" in str(err)
    assert "cannot read '.xlsx' files" in str(err)
    assert "Save As 'CSV UTF-8'" in str(err)


def test_unknown_extension_lists_the_readable_ones(tmp_path: Path) -> None:
    err = error_from(read_table, write_text(tmp_path, "notes.md", "# examples\n"))
    assert "'notes.md'" in str(err)
    assert ".csv, .tsv, .jsonl or .json" in str(err)


# CSV and TSV structure


def test_missing_column_lists_the_columns_that_exist(tmp_path: Path) -> None:
    table = read_table(write_text(tmp_path, "reviews.csv", "review,label\nloved it,positive\n"))
    err = error_from(to_rows, table)
    assert "'reviews.csv'" in str(err)
    assert "no column named 'input'" in str(err)
    assert "'review', 'label'" in str(err)
    assert "Choose the column that holds the input" in str(err)


def test_missing_answers_column_when_named(tmp_path: Path) -> None:
    table = read_table(write_text(tmp_path, "plain.csv", "input,output\nsky,blue\n"))
    err = error_from(to_rows, table, answers_field="synonyms")
    assert "no column named 'synonyms' (chosen as the accepted answers)" in str(err)


def test_duplicated_column_names(tmp_path: Path) -> None:
    content = "input,output,notes,output\nsky,blue,,azure\n"
    err = error_from(read_table, write_text(tmp_path, "twice.csv", content))
    assert "'twice.csv', line 1" in str(err)
    assert "'output' is used twice, for columns 2 and 4" in str(err)
    assert "Rename one of them" in str(err)


def test_row_with_too_many_values_names_the_line(tmp_path: Path) -> None:
    content = "input,output\nsky,blue\ngrass,green,fresh\n"
    err = error_from(read_table, write_text(tmp_path, "extra.csv", content))
    assert "'extra.csv', line 3" in str(err)
    assert "has 3 values, but the header on line 1 names 2 columns" in str(err)
    assert "missing or extra comma" in str(err)
    assert "double quotes" in str(err)


def test_row_with_too_few_values_names_the_line(tmp_path: Path) -> None:
    content = "input\toutput\tsplit\nsky\tblue\ttrain\n\ngrass\tgreen\n"
    err = error_from(read_table, write_text(tmp_path, "short.tsv", content))
    assert "'short.tsv', line 4" in str(err)
    assert "2 values, but the header on line 1 names 3 columns" in str(err)
    assert "missing or extra tab" in str(err)


def test_unclosed_quote_names_the_line_it_starts_on(tmp_path: Path) -> None:
    content = 'input,output\nsky,blue\n"an open quote,green\ngrass,green\n'
    err = error_from(read_table, write_text(tmp_path, "quotes.csv", content))
    assert "'quotes.csv', line 3" in str(err)
    assert "never closed" in str(err)
    assert 'written twice ("")' in str(err)


def test_quoted_multiline_values_keep_line_numbers(tmp_path: Path) -> None:
    content = (
        "input,output\n"
        '"Summarise:\nThe meeting moved to Friday.\nBring the slides.",moved to Friday\n'
        'plain question,"an answer, with a comma"\n'
        "sky,blue\n"
    )
    table = read_table(write_text(tmp_path, "notes.csv", content))
    assert table.lines == [2, 5, 6]
    assert table.records[0]["input"] == (
        "Summarise:\nThe meeting moved to Friday.\nBring the slides."
    )
    assert table.records[1]["output"] == "an answer, with a comma"


def test_windows_line_endings_and_blank_rows(tmp_path: Path) -> None:
    content = "input,output\r\nsky,blue\r\n,\r\n\r\ngrass,green\r\n"
    table = read_table(write_text(tmp_path, "windows.csv", content))
    assert table.lines == [2, 5]


def test_semicolon_csv_from_excel_is_read(tmp_path: Path) -> None:
    table = read_table(write_text(tmp_path, "european.csv", "input;output\n3,5 + 1;4,5\n"))
    assert table.records == [{"input": "3,5 + 1", "output": "4,5"}]


def test_unnamed_column_is_called_by_its_position(tmp_path: Path) -> None:
    table = read_table(write_text(tmp_path, "unnamed.csv", "input,output,\nsky,blue,\n"))
    assert table.columns == ["input", "output", "column 3"]


# JSON Lines and JSON structure


def test_invalid_json_line_names_the_line(tmp_path: Path) -> None:
    content = '{"input": "sky", "output": "blue"}\n\n{"input": "grass" "output": "green"}\n'
    err = error_from(read_table, write_text(tmp_path, "broken.jsonl", content))
    assert "'broken.jsonl', line 3" in str(err)
    assert "not valid JSON" in str(err)
    assert "one example per line" in str(err)
    assert err.line == 3


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    content = '{"input": "sky", "output": "blue"}\n"grass is green"\n'
    err = error_from(read_table, write_text(tmp_path, "text.jsonl", content))
    assert "'text.jsonl', line 2" in str(err)
    assert "a piece of text, not an object" in str(err)


def test_jsonl_holding_a_json_list_suggests_json(tmp_path: Path) -> None:
    content = '[\n{"input": "sky", "output": "blue"}\n]\n'
    err = error_from(read_table, write_text(tmp_path, "list.jsonl", content))
    assert "one JSON list, not one example per line" in str(err)
    assert "Rename it to end in .json" in str(err)


def test_repeated_name_in_one_json_example(tmp_path: Path) -> None:
    content = '{"input": "sky", "output": "blue", "output": "azure"}\n'
    err = error_from(read_table, write_text(tmp_path, "repeat.ndjson", content))
    assert "'repeat.ndjson', line 1" in str(err)
    assert "'output' is given twice" in str(err)


def test_json_file_that_is_not_a_list(tmp_path: Path) -> None:
    content = '{"examples": [{"input": "sky", "output": "blue"}]}'
    err = error_from(read_table, write_text(tmp_path, "wrapped.json", content))
    assert "'wrapped.json'" in str(err)
    assert "holds a single object, not a list of examples" in str(err)
    assert "square brackets" in str(err)


def test_json_list_item_that_is_not_an_object_names_its_line(tmp_path: Path) -> None:
    content = '[\n  {"input": "sky", "output": "blue"},\n  ["grass", "green"]\n]\n'
    err = error_from(read_table, write_text(tmp_path, "mixed.json", content))
    assert "'mixed.json', line 3" in str(err)
    assert "a list, not an object" in str(err)


def test_invalid_json_file_names_the_line(tmp_path: Path) -> None:
    content = '[\n  {"input": "sky", "output": "blue"},\n  {"input": "grass", "output": }\n]\n'
    err = error_from(read_table, write_text(tmp_path, "typo.json", content))
    assert "'typo.json', line 3" in str(err)
    assert "not valid JSON" in str(err)


def test_empty_json_list(tmp_path: Path) -> None:
    err = error_from(read_table, write_text(tmp_path, "none.json", "[ ]\n"))
    assert "'none.json'" in str(err)
    assert "empty list" in str(err)


def test_json_items_remember_the_line_they_start_on(tmp_path: Path) -> None:
    content = '[{"input": "sky", "output": "blue"},\n\n {"input": "grass",\n  "output": "green"}]'
    table = read_table(write_text(tmp_path, "lines.json", content))
    assert table.lines == [1, 3]


def test_json_numbers_and_booleans_become_text(tmp_path: Path) -> None:
    records = [
        {"input": 12, "output": 3.5, "answers": [3.5, "three and a half"]},
        {"input": "Is water wet?", "output": True, "answers": None},
        {"input": ["a", "list"], "output": False},
    ]
    path = write_text(tmp_path, "typed.jsonl", "\n".join(json.dumps(item) for item in records))
    assert to_rows(read_table(path)).rows == [
        Row("12", "3.5", ("3.5", "three and a half")),
        Row("Is water wet?", "true", ("true",)),
        Row('["a", "list"]', "false", ("false",)),
    ]


# From records to rows


def test_blank_output_names_the_line(tmp_path: Path) -> None:
    content = '{"input": "sky", "output": "blue"}\n{"input": "grass", "output": null}\n'
    table = read_table(write_text(tmp_path, "unanswered.jsonl", content))
    err = error_from(to_rows, table)
    assert "'unanswered.jsonl', line 2" in str(err)
    assert "expected output ('output') is empty" in str(err)
    assert "Fill in the output, or delete the example" in str(err)


def test_unknown_split_names_the_line(tmp_path: Path) -> None:
    content = "input,output,split\nsky,blue,Train\ngrass,green,validation\nsea,grey,trian\n"
    table = read_table(write_text(tmp_path, "splits.csv", content))
    err = error_from(to_rows, table)
    assert "'splits.csv', line 4" in str(err)
    assert "'trian' is not one of train, dev or test" in str(err)
    table.records.pop()
    table.lines.pop()
    assert [row.split for row in to_rows(table).rows] == ["train", "dev"]


def test_answers_from_a_json_list_in_a_cell(tmp_path: Path) -> None:
    content = 'question,reply,accepted\nyes or no?,yes,"[""yes"", ""y"", ""yes""]"\n'
    table = read_table(write_text(tmp_path, "listed.csv", content))
    result = to_rows(table, "question", "reply", answers_field="accepted")
    assert result.rows == [Row("yes or no?", "yes", ("yes", "y"))]


def test_answers_from_a_delimited_cell_keep_semicolons(tmp_path: Path) -> None:
    content = "input\toutput\tanswers\npalace\tPalast\tSchloss | Palast |  | Burg ; Feste\n"
    table = read_table(write_text(tmp_path, "words.tsv", content))
    assert to_rows(table).rows == [Row("palace", "Palast", ("Palast", "Schloss", "Burg ; Feste"))]


def test_reference_output_comes_first_among_answers() -> None:
    table = parse_pasted('{"input": "2 + 2", "output": "4", "answers": ["four", "4"]}\n')
    assert to_rows(table).rows[0].answers == ("4", "four")


def test_duplicates_are_reported_with_lines_and_dropped(tmp_path: Path) -> None:
    content = (
        "input,output\n"
        "sky,blue\n"
        "grass,green\n"
        " sky ,blue\n"
        "sky,azure\n"
        "   ,orphan output\n"
        "grass,green\n"
    )
    result = to_rows(read_table(write_text(tmp_path, "repeats.csv", content)))
    assert [(row.input, row.output) for row in result.rows] == [
        ("sky", "blue"),
        ("grass", "green"),
        ("sky", "azure"),
    ]
    assert result.duplicates == [(2, 4), (3, 7)]
    assert result.skipped_blank == 1


# Writing and reading back


@pytest.mark.parametrize("name", ["rows.csv", "rows.tsv", "rows.jsonl", "rows.ndjson", "rows.json"])
def test_rows_round_trip_through_each_format(tmp_path: Path, name: str) -> None:
    written = write_rows(GREETINGS, tmp_path / name)
    assert written == tmp_path / name
    assert to_rows(read_table(written)).rows == GREETINGS
    assert [path.name for path in tmp_path.iterdir()] == [name]


def test_format_argument_overrides_the_extension(tmp_path: Path) -> None:
    written = write_rows(GREETINGS[:2], tmp_path / "rows.data", fmt="jsonl")
    lines = written.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[1]) == {
        "input": "Say thank you in Spanish.",
        "output": "gracias",
        "answers": ["gracias"],
        "split": "dev",
    }


def test_csv_output_joins_answers_with_a_bar(tmp_path: Path) -> None:
    written = write_rows(GREETINGS, tmp_path / "rows.csv")
    content = written.read_bytes()
    assert content.startswith(b"\xef\xbb\xbfinput,output,answers,split\r\n")
    assert "bonjour|bonjour !" in content.decode("utf-8")
    assert '"[""yes | no"", ""yes""]"' in content.decode("utf-8")


def test_unknown_output_format_is_refused(tmp_path: Path) -> None:
    err = error_from(write_rows, GREETINGS, tmp_path / "rows.xlsx")
    assert "'rows.xlsx'" in str(err)
    assert "Save them as .csv, .tsv, .jsonl or .json" in str(err)
    assert not list(tmp_path.iterdir())


def test_saving_into_a_missing_folder_says_so(tmp_path: Path) -> None:
    target = tmp_path / "missing folder" / "rows.csv"
    err = error_from(write_rows, GREETINGS, target)
    assert "'rows.csv'" in str(err)
    assert "could not be saved" in str(err)
    assert "Choose another folder" in str(err)
    assert not target.exists()


def test_failed_save_keeps_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = write_text(tmp_path, "rows.jsonl", "the earlier contents\n")

    def disk_full(source: object, destination: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    err = error_from(write_rows, GREETINGS, target)
    assert "No space left on device" in str(err)
    assert target.read_text(encoding="utf-8") == "the earlier contents\n"
    assert [path.name for path in tmp_path.iterdir()] == ["rows.jsonl"]


# Pasted text


def test_pasted_tab_separated_cells() -> None:
    pasted = "\ninput\toutput\r\nthree, four\tfive\r\nten\televen\r\n"
    table = parse_pasted(pasted)
    assert table.source == "pasted text"
    assert table.columns == ["input", "output"]
    assert table.lines == [3, 4]
    assert [row.output for row in to_rows(table).rows] == ["five", "eleven"]


def test_pasted_comma_separated_rows() -> None:
    table = parse_pasted('input,output\n"one, two",three\n')
    assert to_rows(table).rows == [Row("one, two", "three", ("three",))]


def test_pasted_json_lines() -> None:
    table = parse_pasted('  {"input": "up", "output": "down"}\n{"input": "in", "output": "out"}')
    assert [row.output for row in to_rows(table).rows] == ["down", "out"]


def test_pasted_errors_name_the_pasted_text() -> None:
    err = error_from(parse_pasted, "input,output\nsky,blue\ngrass\n")
    assert str(err).startswith("The pasted text, line 3:")
    assert err.path is None
    assert err.line == 3


def test_nothing_pasted() -> None:
    err = error_from(parse_pasted, " \n\t\n")
    assert "nothing to import" in str(err)
    assert "header line first" in str(err)


# Splits


def test_split_rows_is_deterministic_and_proportional() -> None:
    fractions = {"train": 0.8, "dev": 0.2}
    names = split_rows(50, fractions, seed=3)
    assert names == split_rows(50, fractions, seed=3)
    assert names != split_rows(50, fractions, seed=4)
    assert Counter(names) == {"train": 40, "dev": 10}
    assert names != sorted(names, key=list(fractions).index)


def test_split_sizes_round_to_the_total() -> None:
    assert Counter(split_rows(5, {"train": 0.8, "dev": 0.2}, seed=0)) == {"train": 4, "dev": 1}
    three_ways = Counter(split_rows(10, {"train": 1, "dev": 1, "test": 1}, seed=0))
    assert three_ways == {"train": 4, "dev": 3, "test": 3}
    assert split_rows(0, {"train": 1.0}, seed=0) == []


def test_split_rows_refuses_bad_fractions() -> None:
    with pytest.raises(ValueError, match="among train, dev, test"):
        split_rows(3, {"holdout": 1.0}, seed=0)
    with pytest.raises(ValueError, match="zero or more"):
        split_rows(3, {"train": -0.5, "dev": 1.5}, seed=0)


# The tests' own data


def test_reads_the_sentiment_file_of_the_test_data() -> None:
    result = to_rows(read_table(data_file("sentiment", "train")))
    assert len(result.rows) == 200
    assert result.duplicates == []
    assert result.skipped_blank == 0
    assert Counter(row.output for row in result.rows) == {"positive": 100, "negative": 100}
    assert all(row.answers == (row.output,) for row in result.rows)
