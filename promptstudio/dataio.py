"""Reading and writing the example rows that a prompt is tuned on.

Examples arrive from spreadsheets, scripts and the clipboard, so the readers take CSV, TSV,
JSON Lines and JSON, and every problem becomes a `DataError` whose message names the file and
line and says what to do, in words for someone who has never seen a traceback.

Reading happens in two steps so that the GUI can show a preview in between: `read_table` or
`parse_pasted` give the records as the file holds them, and `to_rows` turns them into `Row`s
once the user has said which column is which.

Accepted answers in a text cell are separated by "|" (never ";", which real answers contain,
as in "Palast ; Schloss"); a cell may instead hold a JSON list, such as ["yes", "y"].
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import random
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_FILE_BYTES = 100 * 1024 * 1024
MAX_ROWS = 100_000
"""Tuning a prompt needs hundreds of examples; a file of millions would take minutes and
gigabytes to read (95 MB of short CSV rows: 62 s and 5 GB), so reading stops here."""
MAX_COLUMNS = 1_000
MAX_CELLS = 2_000_000
"""Rows times columns: what keeps a wide file's records within a few hundred MB."""
MAX_VALUE_CHARS = 131_072
"""The longest value: the csv module's own field limit, far beyond what a model reads."""
SPLITS = ("train", "dev", "test")
PASTED_TEXT = "pasted text"
ANSWER_SEPARATOR = "|"
COLUMNS = ("input", "output", "answers", "split")

_READ_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "guess",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
}
_WRITE_FORMATS = {"csv": "csv", "tsv": "tsv", "jsonl": "jsonl", "ndjson": "jsonl", "json": "json"}
_SPREADSHEET_SUFFIXES = {".xlsx", ".xls", ".xlsm", ".ods", ".numbers"}
_SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "dev": "dev",
    "val": "dev",
    "valid": "dev",
    "validation": "dev",
    "test": "test",
    "testing": "test",
}
_DELIMITER_NAMES = {",": "comma", "\t": "tab", ";": "semicolon"}

_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_JSON_SPACE = re.compile(r"[ \t\n\r]*")
_VISIBLE = re.compile(r"\S")
_FIRST_VISIBLE_LINE = re.compile(r"[^\r\n]*\S[^\r\n]*")
_UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_SNIFF_BYTES = 8192
_BINARY_CONTROL_SHARE = 0.05
_TEXT_CONTROL_BYTES = frozenset(b"\t\n\r\x0b\x0c\x1b")
_SIGNATURES = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an Excel, Word or OpenDocument file is one)"),
    (b"\xd0\xcf\x11\xe0", "an old-style Excel or Word file"),
    (b"\x1f\x8b", "a compressed (gzip) file"),
    (b"SQLite format 3\x00", "an SQLite database"),
)

_SAVE_AS_UTF8 = (
    "Open it in your spreadsheet or text editor and save it again as UTF-8 "
    "(Excel calls this 'CSV UTF-8')."
)
_SAVE_AS_TEXT = (
    "Choose a file of examples saved as text: CSV, TSV, JSON Lines or JSON "
    "(from a spreadsheet, use Save As 'CSV UTF-8')."
)
_ONE_OBJECT_PER_LINE = 'Write one example per line, like {"input": "...", "output": "..."}.'
_LIST_OF_OBJECTS = (
    "Put the examples in square brackets, separated by commas: "
    '[{"input": "...", "output": "..."}, ...].'
)


class DataError(ValueError):
    """Examples that cannot be used as they are; the message says, in plain words, what to fix."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


@dataclass(frozen=True)
class Row:
    """One example: an input, its reference output, and every answer that counts as right."""

    input: str
    output: str
    answers: tuple[str, ...]
    split: str | None = None


@dataclass
class Table:
    """What a file held, before the user says which column is the input and which the output."""

    columns: list[str]
    records: list[dict[str, object]]
    source: str
    lines: list[int]


@dataclass
class ImportResult:
    """The rows of a table, with what was left out so the GUI can tell the user."""

    rows: list[Row]
    duplicates: list[tuple[int, int]]
    skipped_blank: int


def read_table(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> Table:
    """The records of a file of examples, read in the format its extension names.

    A .txt file is read like pasted text, since Excel saves tab-separated files under that name.
    """
    path = Path(path)
    source = str(path)
    size = _file_size(path)
    fmt = _read_format(path)
    if size > max_bytes:
        raise _too_large(source, size, max_bytes)
    text = _decode(_read_bytes(path, max_bytes), source)
    if fmt == "csv":
        return _parse_delimited(text, source, preferred=",")
    if fmt == "tsv":
        return _parse_delimited(text, source, preferred="\t")
    if fmt == "jsonl":
        return _parse_jsonl(text, source)
    if fmt == "json":
        return _parse_json(text, source)
    return _parse_guessed(text, source)


def parse_pasted(text: str) -> Table:
    """The records of text pasted into the GUI, with its header line first.

    Rows are tab-separated when the header has a tab (what copying cells from a spreadsheet
    gives), else comma-separated; text starting with "{" is JSON Lines and "[" a JSON list.
    """
    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _problem(
            PASTED_TEXT,
            None,
            "there is nothing to import.",
            "Paste your examples with a header line first, such as: input, output.",
        )
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(PASTED_TEXT, len(text), MAX_FILE_BYTES)
    _reject_nul(text, PASTED_TEXT)
    return _parse_guessed(text, PASTED_TEXT)


def to_rows(
    table: Table,
    input_field: str = "input",
    output_field: str = "output",
    answers_field: str | None = None,
    split_field: str | None = None,
) -> ImportResult:
    """The examples in a table, given which column holds what.

    With no answers or split column named, the columns "answers" and "split" are used when the
    table has them. Text is trimmed; records with a blank input are counted and skipped; a record
    repeating an earlier one's input and output is reported and dropped.
    """
    if answers_field is None and "answers" in table.columns:
        answers_field = "answers"
    if split_field is None and "split" in table.columns:
        split_field = "split"
    for role, name in (
        ("input", input_field),
        ("expected output", output_field),
        ("accepted answers", answers_field),
        ("split", split_field),
    ):
        if name is not None and name not in table.columns:
            raise _missing_column(table, name, role)

    rows: list[Row] = []
    duplicates: list[tuple[int, int]] = []
    skipped_blank = 0
    first_line_of: dict[tuple[str, str], int] = {}
    for record, line in zip(table.records, table.lines, strict=True):
        input_text = _as_text(record.get(input_field)).strip()
        if not input_text:
            skipped_blank += 1
            continue
        output_text = _as_text(record.get(output_field)).strip()
        for role, value in (("input", input_text), ("expected output", output_text)):
            if len(value) > MAX_VALUE_CHARS:
                raise _problem(
                    table.source,
                    line,
                    f"this example's {role} is {len(value):,} characters long, more than the "
                    f"{MAX_VALUE_CHARS:,} a value may have (a model reads a few thousand words "
                    "at most).",
                    "Shorten it, or leave this example out.",
                )
        if not output_text:
            raise _problem(
                table.source,
                line,
                f"this example has an input but its expected output ('{output_field}') is empty.",
                "Fill in the output, or delete the example.",
            )
        key = (input_text, output_text)
        if key in first_line_of:
            duplicates.append((first_line_of[key], line))
            continue
        first_line_of[key] = line
        answers = _answers(output_text, record.get(answers_field) if answers_field else None)
        split = _split_name(record.get(split_field), table.source, line) if split_field else None
        rows.append(Row(input_text, output_text, answers, split))
    return ImportResult(rows, duplicates, skipped_blank)


def write_rows(rows: Sequence[Row], path: str | Path, fmt: str | None = None) -> Path:
    """Saves rows with the columns input, output, answers and split, replacing the file whole.

    In CSV and TSV the answers are joined with "|", or written as a JSON list when an answer
    itself contains "|"; those files start with a UTF-8 byte order mark so Excel reads accents.
    """
    path = Path(path)
    chosen = _write_format(path, fmt)
    if chosen in ("csv", "tsv"):
        content = "\ufeff" + _render_delimited(rows, "," if chosen == "csv" else "\t")
    elif chosen == "jsonl":
        content = "".join(_json_line(_as_json_record(row)) + "\n" for row in rows)
    else:
        records = [_as_json_record(row) for row in rows]
        content = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    _write_whole(path, content.encode("utf-8"))
    return path


def split_rows(n: int, fractions: dict[str, float], seed: int) -> list[str]:
    """A split name for each of n rows, in shuffled order, the same for the same seed.

    Fractions are taken relative to their sum, and sizes are rounded by largest remainder so
    that they add up to n: {"train": 0.8, "dev": 0.2} gives 4 train and 1 dev for 5 rows.
    """
    sizes = _split_sizes(n, fractions)
    names = [name for name, size in sizes.items() for _ in range(size)]
    random.Random(seed).shuffle(names)
    return names


def _problem(source: str, line: int | None, problem: str, remedy: str) -> DataError:
    """A DataError reading "<where>: <problem> <remedy>", where names the file and line."""
    if source == PASTED_TEXT:
        where, path = "The pasted text", None
    else:
        where, path = f"'{Path(source).name}'", source
    if line is not None:
        where += f", line {line}"
    return DataError(f"{where}: {problem} {remedy}", path=path, line=line)


def _line_at(text: str, index: int) -> int:
    """The 1-based line of a character, counting line breaks the way the CSV reader does."""
    return len(_LINE_BREAK.findall(text, 0, index)) + 1


def _file_size(path: Path) -> int:
    source = str(path)
    try:
        info = path.stat()
    except FileNotFoundError:
        raise _problem(
            source,
            None,
            f"there is no such file in the folder '{path.absolute().parent}'.",
            "Check the name and the folder, or choose the file again.",
        ) from None
    except OSError as err:
        raise _unreadable(source, err) from None
    if path.is_dir():
        raise _problem(source, None, "this is a folder, not a file.", "Choose a file inside it.")
    return info.st_size


def _read_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _READ_FORMATS:
        return _READ_FORMATS[suffix]
    if suffix in _SPREADSHEET_SUFFIXES:
        remedy = "Save it from your spreadsheet with Save As 'CSV UTF-8', then choose that file."
    else:
        remedy = "Choose a file ending in .csv, .tsv, .jsonl or .json."
    kind = f"'{suffix}' files" if suffix else "files without an extension"
    raise _problem(str(path), None, f"PromptStudio cannot read {kind}.", remedy)


def _too_large(source: str, size: int, limit: int) -> DataError:
    return _problem(
        source,
        None,
        f"the file is {_size_text(size)}, more than the {_size_text(limit)} that can be imported.",
        "Split it into smaller files, or keep only the examples you need.",
    )


def _size_text(size: int) -> str:
    for unit, scale in (("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if size >= scale:
            amount = size / scale
            return f"{amount:.0f} {unit}" if amount.is_integer() else f"{amount:.1f} {unit}"
    return f"{size} bytes"


def _unreadable(source: str, err: OSError) -> DataError:
    reason = err.strerror or str(err)
    return _problem(
        source,
        None,
        f"the file cannot be opened ({reason}).",
        "Close it in any other program, check that you may read it, and try again.",
    )


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refusing it if it has grown past the limit since it was measured."""
    try:
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as err:
        raise _unreadable(str(path), err) from None
    if len(data) > max_bytes:
        raise _too_large(str(path), max(len(data), path.stat().st_size), max_bytes)
    return data


def _decode(data: bytes, source: str) -> str:
    """The file's text, after checking that it is UTF-8 text at all."""
    if not data:
        raise _empty(source)
    if data.startswith(_UTF16_BOMS):
        raise _problem(
            source,
            None,
            "the file is saved as UTF-16 ('Unicode Text'), which PromptStudio does not read.",
            _SAVE_AS_UTF8,
        )
    kind = _binary_kind(data[:_SNIFF_BYTES])
    if kind is not None:
        raise _problem(source, None, f"this is not a text file: {kind}.", _SAVE_AS_TEXT)
    data = data.removeprefix(_UTF8_BOM)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        readable = data[: err.start].decode("utf-8")
        line_so_far = _LINE_BREAK.split(readable[-200:])[-1][-20:].strip()
        near = f" (just after '{line_so_far}')" if line_so_far else ""
        raise _problem(
            source,
            _line_at(readable, len(readable)),
            f"the file is not saved as UTF-8 text; this line has a character{near} in another "
            "encoding, such as Windows' Latin-1.",
            _SAVE_AS_UTF8,
        ) from None
    if not _first_visible(text):
        raise _empty(source)
    _reject_nul(text, source)
    return text


def _binary_kind(block: bytes) -> str | None:
    """How a file's first block shows it is not text, or None when it looks like text.

    Text has almost no control characters, so a few stray NULs mean a damaged text file (told
    by line later), while many mean binary data, UTF-16 without its mark included.
    """
    for signature, kind in _SIGNATURES:
        if block.startswith(signature):
            return f"it looks like {kind}"
    controls = sum(1 for byte in block if byte < 0x20 and byte not in _TEXT_CONTROL_BYTES)
    if controls + block.count(0x7F) > len(block) * _BINARY_CONTROL_SHARE:
        return "it holds binary data, not readable text"
    return None


def _reject_nul(text: str, source: str) -> None:
    position = text.find("\x00")
    if position >= 0:
        raise _problem(
            source,
            _line_at(text, position),
            "this line holds a NUL character, an invisible zero byte that does not belong in "
            "text; the file may be damaged.",
            "Delete that character in a text editor, or export the file again.",
        )


def _empty(source: str) -> DataError:
    return _problem(
        source, None, "the file is empty.", "Choose a file that holds your examples, one per row."
    )


def _first_visible(text: str) -> str:
    """The first character that is not white space, without copying a text of many megabytes."""
    found = _VISIBLE.search(text)
    return found.group() if found else ""


def _parse_guessed(text: str, source: str) -> Table:
    first = _first_visible(text)
    if first == "{":
        return _parse_jsonl(text, source)
    if first == "[":
        return _parse_json(text, source)
    return _parse_delimited(text, source, preferred=None)


def _parse_delimited(text: str, source: str, preferred: str | None) -> Table:
    """CSV or TSV records, keyed by the first non-blank row; fully blank rows are ignored."""
    delimiter = _guess_delimiter(text, preferred)
    columns: list[str] | None = None
    header_line = 0
    row_limit = MAX_ROWS
    records: list[dict[str, object]] = []
    lines: list[int] = []
    for line, fields in _numbered_rows(text, delimiter, source):
        if not any(value.strip() for value in fields):
            continue
        if columns is None:
            columns, header_line = _header(fields, source, line), line
            row_limit = _row_limit(len(columns))
            continue
        if len(records) == row_limit:
            raise _too_many_rows(source, row_limit, len(columns))
        if len(fields) != len(columns):
            separator = _DELIMITER_NAMES[delimiter]
            raise _problem(
                source,
                line,
                f"this row has {_count(len(fields), 'value')}, but the header on line "
                f"{header_line} names {_count(len(columns), 'column')}.",
                f"Look for a missing or extra {separator} on that line; a value that contains "
                f"a {separator} must be put in double quotes.",
            )
        records.append(dict(zip(columns, fields, strict=True)))
        lines.append(line)
    if columns is None:
        raise _empty(source)
    if not records:
        raise _problem(
            source,
            None,
            f"there are column names on line {header_line} but no examples under them.",
            "Add one example per row below the header.",
        )
    return Table(columns, records, source, lines)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _guess_delimiter(text: str, preferred: str | None) -> str:
    """The separator of the header line: the preferred one if it has it, else one it has.

    This reads a .csv that is really tab-separated, and the semicolon CSV that Excel writes
    where the decimal mark is a comma.
    """
    found = _FIRST_VISIBLE_LINE.search(text)
    header = found.group() if found else ""
    if preferred is not None and preferred in header:
        return preferred
    return next((mark for mark in _DELIMITER_NAMES if mark in header), preferred or ",")


def _numbered_rows(text: str, delimiter: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV row with the line it starts on, so that multi-line values keep lines right."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    end_of_previous = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            problem = _quoting_problem(str(err))
            raise _problem(
                source,
                end_of_previous + 1,
                problem,
                'A value that starts with " must end with " before the next separator, and a " '
                'inside such a value is written twice ("").',
            ) from None
        yield end_of_previous + 1, fields
        end_of_previous = reader.line_num


def _quoting_problem(reason: str) -> str:
    """What a CSV reading error means, told from the csv module's own wording."""
    if "unexpected end of data" in reason:
        return "a value on this line opens a quotation mark that is never closed."
    if "field larger" in reason:
        return (
            f"a value starting on this line is longer than {csv.field_size_limit():,} "
            "characters: a quotation mark is never closed, or the value is far longer than "
            "a model can read."
        )
    return "a quotation mark on this line is out of place."


def _header(fields: list[str], source: str, line: int) -> list[str]:
    """Column names, trimmed; an unnamed column is called by its position, "column 3"."""
    if len(fields) > MAX_COLUMNS:
        raise _too_many_columns(source, line, len(fields))
    columns = [name.strip() or f"column {number}" for number, name in enumerate(fields, 1)]
    first_position: dict[str, int] = {}
    for position, name in enumerate(columns, 1):
        if name in first_position:
            raise _problem(
                source,
                line,
                f"the column name '{name}' is used twice, for columns "
                f"{first_position[name]} and {position}.",
                "Rename one of them so that every column has its own name.",
            )
        first_position[name] = position
    return columns


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object, refusing a name given twice, which json would otherwise settle silently."""
    record: dict[str, object] = {}
    for key, value in pairs:
        if key in record:
            raise _RepeatedKey(key)
        record[key] = value
    return record


_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def _decode_json(text: str, start: int, source: str, line: int | None) -> tuple[object, int]:
    """One JSON value starting at text[start], and where it ends.

    Errors name `line` when given (a JSON Lines line), else the line the error is on.
    """
    remedy = _ONE_OBJECT_PER_LINE if line is not None else _LIST_OF_OBJECTS
    try:
        return _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as err:
        raise _problem(
            source,
            line if line is not None else _line_at(text, err.pos),
            f"this is not valid JSON ({err.msg}).",
            remedy,
        ) from None
    except RecursionError:
        raise _problem(
            source,
            line if line is not None else _line_at(text, start),
            "the JSON here is nested too deeply (lists or objects inside one another "
            "hundreds of levels down), which no example of an input and an output needs.",
            remedy,
        ) from None
    except ValueError as err:  # Python refuses integers of more than 4,300 digits
        raise _problem(
            source,
            line if line is not None else _line_at(text, start),
            f"a number here is too long to read ({err}).",
            "Put long numbers in quotes, as text.",
        ) from None
    except _RepeatedKey as repeated:
        raise _problem(
            source,
            line if line is not None else _line_at(text, start),
            f"the name '{repeated.key}' is given twice in one example.",
            "Keep only one of them.",
        ) from None


def _parse_jsonl(text: str, source: str) -> Table:
    if _first_visible(text) == "[":
        raise _problem(
            source,
            None,
            "the file holds one JSON list, not one example per line.",
            'Rename it to end in .json, or save one example per line, like {"input": "..."}.',
        )
    records: list[dict[str, object]] = []
    lines: list[int] = []
    cells = 0
    for number, line_text in enumerate(_lines(text), 1):
        if not line_text.strip():
            continue
        if len(records) == MAX_ROWS or cells > MAX_CELLS:
            raise _too_many_rows(source, len(records), len(_columns_of(records)))
        start = _skip_json_space(line_text, 0)
        value, end = _decode_json(line_text, start, source, number)
        if line_text[end:].strip():
            raise _problem(
                source,
                number,
                "this line holds more than one JSON value.",
                _ONE_OBJECT_PER_LINE,
            )
        records.append(_as_record(value, source, number, _ONE_OBJECT_PER_LINE))
        lines.append(number)
        cells += len(records[-1])
    if not records:
        raise _empty(source)
    return Table(_json_columns(records, source), records, source, lines)


def _lines(text: str) -> Iterator[str]:
    """The lines of a text, as `_LINE_BREAK.split` gives them, one at a time: a file of
    millions of lines is refused after `MAX_ROWS` without first being copied whole."""
    start = 0
    for found in _LINE_BREAK.finditer(text):
        yield text[start:found.start()]
        start = found.end()
    yield text[start:]


def _parse_json(text: str, source: str) -> Table:
    """A JSON list of objects, read one item at a time to know the line each starts on."""
    position = _skip_json_space(text, 0)
    if not text.startswith("[", position):
        value, end = _decode_json(text, position, source, None)
        if text[end:].strip():
            raise _problem(
                source,
                _line_at(text, end),
                "there is more text after the end of the JSON.",
                _LIST_OF_OBJECTS,
            )
        raise _problem(
            source,
            None,
            f"the file holds {_kind_of(value)}, not a list of examples.",
            _LIST_OF_OBJECTS,
        )
    records: list[dict[str, object]] = []
    lines: list[int] = []
    cells = 0
    line = _line_at(text, position)
    counted_to = position
    position = _skip_json_space(text, position + 1)
    while not text.startswith("]", position):
        if len(records) == MAX_ROWS or cells > MAX_CELLS:
            raise _too_many_rows(source, len(records), len(_columns_of(records)))
        line += len(_LINE_BREAK.findall(text, counted_to, position))
        counted_to = position
        value, position = _decode_json(text, position, source, None)
        records.append(_as_record(value, source, line, _LIST_OF_OBJECTS))
        lines.append(line)
        cells += len(records[-1])
        position = _skip_json_space(text, position)
        if text.startswith(",", position):
            position = _skip_json_space(text, position + 1)
        elif not text.startswith("]", position):
            raise _problem(
                source,
                _line_at(text, position),
                "this is not valid JSON (a comma or a closing ] is missing).",
                _LIST_OF_OBJECTS,
            )
    if _VISIBLE.search(text, position + 1):
        raise _problem(
            source,
            _line_at(text, position + 1),
            "there is more text after the list of examples ends.",
            "Delete it, or put it inside the list.",
        )
    if not records:
        raise _problem(
            source, None, "the file holds an empty list.", "Add your examples to the list."
        )
    return Table(_json_columns(records, source), records, source, lines)


def _skip_json_space(text: str, position: int) -> int:
    space = _JSON_SPACE.match(text, position)
    return space.end() if space else position


def _as_record(value: object, source: str, line: int, remedy: str) -> dict[str, object]:
    if not isinstance(value, dict):
        raise _problem(
            source,
            line,
            f"this example is {_kind_of(value)}, not an object with named values.",
            remedy,
        )
    return value


def _kind_of(value: object) -> str:
    if isinstance(value, dict):
        return "a single object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a piece of text"
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    return "a number"


def _columns_of(records: list[dict[str, object]]) -> list[str]:
    """Every name used by any record, in the order they first appear."""
    return list(dict.fromkeys(name for record in records for name in record))


def _json_columns(records: list[dict[str, object]], source: str) -> list[str]:
    columns = _columns_of(records)
    if len(columns) > MAX_COLUMNS:
        raise _too_many_columns(source, None, len(columns))
    return columns


def _row_limit(columns: int) -> int:
    """How many records of that many columns may be read."""
    return min(MAX_ROWS, MAX_CELLS // max(columns, 1))


def _too_many_rows(source: str, rows: int, columns: int) -> DataError:
    shape = f" of {columns:,} columns" if rows < MAX_ROWS else ""
    return _problem(
        source,
        None,
        f"the file holds more than {rows:,} examples{shape}, more than PromptStudio reads at "
        "once (tuning a prompt needs a few hundred).",
        "Save a sample of the rows, with only the columns you need, in a smaller file.",
    )


def _too_many_columns(source: str, line: int | None, columns: int) -> DataError:
    return _problem(
        source,
        line,
        f"the file has {columns:,} columns, more than the {MAX_COLUMNS:,} PromptStudio reads.",
        "Keep only the columns that hold the inputs, the outputs, and if you have them the "
        "accepted answers and the split, and save it again.",
    )


def _missing_column(table: Table, name: str, role: str) -> DataError:
    shown = 20
    listing = ", ".join(f"'{column}'" for column in table.columns[:shown])
    if len(table.columns) > shown:
        listing += f" and {len(table.columns) - shown:,} more"
    return _problem(
        table.source,
        None,
        f"there is no column named '{name}' (chosen as the {role}). "
        f"The columns it has are: {listing}.",
        f"Choose the column that holds the {role} from these.",
    )


def _as_text(value: object) -> str:
    """A cell as text: JSON numbers and true/false as JSON writes them, a missing value as ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _answers(output: str, cell: object) -> tuple[str, ...]:
    """Every accepted answer, the reference output first, each once."""
    return tuple(dict.fromkeys([output, *_answer_items(cell)]))


def _answer_items(cell: object) -> list[str]:
    if cell is None:
        return []
    if isinstance(cell, str) and cell.lstrip().startswith("["):
        cell = _json_list_or_text(cell)
    if isinstance(cell, str):
        items = cell.split(ANSWER_SEPARATOR)
    elif isinstance(cell, list):
        items = [_as_text(item) for item in cell]
    else:
        items = [_as_text(cell)]
    return [item.strip() for item in items if item.strip()]


def _json_list_or_text(cell: str) -> object:
    """A cell that reads as a JSON list, as that list; anything else stays the text it was."""
    try:
        value = json.loads(cell)
    except (ValueError, RecursionError):
        return cell
    return value if isinstance(value, list) else cell


def _split_name(cell: object, source: str, line: int) -> str | None:
    written = _as_text(cell).strip()
    if not written:
        return None
    try:
        return _SPLIT_NAMES[written.lower()]
    except KeyError:
        raise _problem(
            source,
            line,
            f"the split '{written}' is not one of train, dev or test.",
            "Change it to one of those, or leave it empty.",
        ) from None


def _write_format(path: Path, fmt: str | None) -> str:
    wanted = (fmt if fmt is not None else path.suffix).lower().lstrip(".")
    if wanted not in _WRITE_FORMATS:
        raise _problem(
            str(path),
            None,
            f"examples cannot be saved as '{wanted or 'a file without an extension'}'.",
            "Save them as .csv, .tsv, .jsonl or .json.",
        )
    return _WRITE_FORMATS[wanted]


def _render_delimited(rows: Sequence[Row], delimiter: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([row.input, row.output, _answers_cell(row.answers), row.split or ""])
    return buffer.getvalue()


def _answers_cell(answers: tuple[str, ...]) -> str:
    """Answers joined by "|", or a JSON list when joining could not be read back the same."""
    joined = ANSWER_SEPARATOR.join(answers)
    if any(ANSWER_SEPARATOR in answer for answer in answers) or joined.lstrip().startswith("["):
        return _json_line(list(answers))
    return joined


def _as_json_record(row: Row) -> dict[str, object]:
    return {
        "input": row.input,
        "output": row.output,
        "answers": list(row.answers),
        "split": row.split,
    }


def _json_line(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def _write_whole(path: Path, data: bytes) -> None:
    """Writes beside the target and then renames, so a failure never leaves half a file."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        try:
            with partial.open("xb") as stream:
                stream.write(data)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    except OSError as err:
        raise _problem(
            str(path),
            None,
            f"the examples could not be saved ({err.strerror or err}).",
            "Choose another folder or name, and check that the disk is not full.",
        ) from None


def _split_sizes(n: int, fractions: dict[str, float]) -> dict[str, int]:
    if n < 0:
        raise ValueError(f"the number of rows cannot be negative, got {n}")
    unknown = [name for name in fractions if name not in SPLITS]
    if not fractions or unknown:
        raise ValueError(f"split names must be among {', '.join(SPLITS)}, got {list(fractions)}")
    if any(not math.isfinite(share) or share < 0 for share in fractions.values()):
        raise ValueError(f"split fractions must be zero or more, got {fractions}")
    total = sum(fractions.values())
    if total <= 0:
        raise ValueError(f"split fractions must not all be zero, got {fractions}")
    exact = {name: n * share / total for name, share in fractions.items()}
    sizes = {name: math.floor(amount) for name, amount in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - sizes[name], reverse=True)
    for name in by_remainder[: n - sum(sizes.values())]:
        sizes[name] += 1
    return sizes
