"""Files built to break a reader: each gets a message naming the file and what is wrong, in
bounded memory, and the project is left as it was.

Found by trying what Python's readers do with extreme input: JSON nested 100,000 deep (a
RecursionError), a number of 100,000 digits (Python refuses to read it), a CSV with 200,000
columns, millions of tiny rows (62 s and 5 GB for 95 MB before the row limit), a value of
millions of characters, a 2 GB file, and a GGUF header whose counts are damaged.
"""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from promptstudio import dataio
from promptstudio.cli import main
from promptstudio.dataio import (
    MAX_CELLS,
    MAX_COLUMNS,
    MAX_ROWS,
    MAX_VALUE_CHARS,
    DataError,
    read_table,
    to_rows,
)
from promptstudio.llm.base import ModelFileError
from promptstudio.llm.gguf import inspect_gguf

DEEP = 100_000


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def refused(path: Path) -> str:
    with pytest.raises(DataError) as caught:
        to_rows(read_table(path))
    return str(caught.value)


# -- JSON -----------------------------------------------------------------------------------


def test_json_nested_100000_deep_is_refused_in_words(tmp_path):
    said = refused(write(tmp_path / "deep.json", "[" * DEEP + "]" * DEEP))
    assert said.startswith("'deep.json', line 1: the JSON here is nested too deeply")


def test_a_deep_value_inside_an_example_names_its_line(tmp_path):
    deep = "[" * DEEP + "]" * DEEP
    said = refused(write(tmp_path / "rows.jsonl",
                         '{"input": "a", "output": "b"}\n'
                         f'{{"input": {deep}, "output": "c"}}\n'))
    assert said.startswith("'rows.jsonl', line 2: the JSON here is nested too deeply")
    said = refused(write(tmp_path / "rows.json",
                         f'[\n{{"input": "a", "output": "b"}},\n{{"input": {deep}}}\n]'))
    assert said.startswith("'rows.json', line 3: the JSON here is nested too deeply")


def test_a_number_of_100000_digits_is_refused_in_words(tmp_path):
    said = refused(write(tmp_path / "big.jsonl", f'{{"input": {"9" * DEEP}, "output": "x"}}\n'))
    assert said.startswith("'big.jsonl', line 1: a number here is too long to read")
    assert "Put long numbers in quotes" in said


def test_a_deeply_nested_answers_cell_stays_text(tmp_path):
    cell = "[" * 60_000 + "]" * 60_000
    rows = to_rows(read_table(write(tmp_path / "a.csv", f'input,output,answers\nx,y,"{cell}"\n')))
    assert rows.rows[0].answers == ("y", cell)


def test_pasted_deep_json_is_refused_in_words():
    with pytest.raises(DataError, match="nested too deeply"):
        dataio.parse_pasted("[" * DEEP + "]" * DEEP)


# -- size and shape -------------------------------------------------------------------------


def test_a_csv_with_200000_columns_is_refused_at_its_header(tmp_path):
    header = ",".join(f"c{i}" for i in range(200_000))
    said = refused(write(tmp_path / "wide.csv", header + "\n" + "v," * 199_999 + "v\n"))
    assert said.startswith("'wide.csv', line 1: the file has 200,000 columns, more than the "
                           f"{MAX_COLUMNS:,}")


def test_json_records_with_too_many_names_are_refused(tmp_path):
    record = {f"c{i}": "v" for i in range(MAX_COLUMNS + 1)}
    said = refused(write(tmp_path / "wide.jsonl", json.dumps(record) + "\n"))
    assert f"the file has {MAX_COLUMNS + 1:,} columns" in said


def test_a_missing_column_lists_only_the_first_names_of_a_wide_file(tmp_path):
    header = ",".join(f"col{i}" for i in range(900))
    table = read_table(write(tmp_path / "wide.csv", header + "\n" + "v," * 899 + "v\n"))
    with pytest.raises(DataError) as caught:
        to_rows(table)
    said = str(caught.value)
    assert "'col19' and 880 more" in said and "'col20'" not in said and len(said) < 800


def test_more_rows_than_can_be_tuned_on_are_refused(tmp_path):
    lines = "".join(f"word{i},w\n" for i in range(MAX_ROWS + 1))
    said = refused(write(tmp_path / "long.csv", "input,output\n" + lines))
    assert said.startswith(f"'long.csv': the file holds more than {MAX_ROWS:,} examples")
    jsonl = "".join(f'{{"input": "w{i}", "output": "w"}}\n' for i in range(MAX_ROWS + 1))
    assert f"more than {MAX_ROWS:,} examples" in refused(write(tmp_path / "long.jsonl", jsonl))


def test_exactly_the_row_limit_is_read(tmp_path):
    lines = "".join(f"word{i},w\n" for i in range(MAX_ROWS))
    rows = to_rows(read_table(write(tmp_path / "full.csv", "input,output\n" + lines)))
    assert len(rows.rows) == MAX_ROWS


def test_wide_rows_stop_at_the_cell_limit(tmp_path):
    columns = 900
    header = "input,output," + ",".join(f"c{i}" for i in range(columns - 2))
    row = "a,b," + ",".join("v" for _ in range(columns - 2)) + "\n"
    limit = MAX_CELLS // columns
    said = refused(write(tmp_path / "cells.csv", header + "\n" + row * (limit + 1)))
    assert f"more than {limit:,} examples of {columns} columns" in said


def test_a_value_of_millions_of_characters_is_refused_with_its_line(tmp_path):
    text = json.dumps({"input": "a" * 3_000_000, "output": "b"})
    said = refused(write(tmp_path / "long.jsonl", '{"input": "x", "output": "y"}\n' + text))
    assert said.startswith("'long.jsonl', line 2: this example's input is 3,000,000 "
                           f"characters long, more than the {MAX_VALUE_CHARS:,}")
    said = refused(write(tmp_path / "long.csv", "input,output\n" + "a" * 3_000_000 + ",b\n"))
    assert said.startswith("'long.csv', line 2: a value starting on this line is longer than")


def test_a_2_gb_file_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:  # sparse: no disk space, no time
        handle.truncate(2 * 1024**3)
    said = refused(path)
    assert said.startswith("'huge.csv': the file is 2 GB, more than the 100 MB")


PEAK_MEMORY = """
import resource, sys
from promptstudio import dataio
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    dataio.to_rows(dataio.read_table(sys.argv[1]))
except dataio.DataError as exc:
    print(exc, file=sys.stderr)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_a_file_of_millions_of_tiny_rows_is_refused_in_bounded_memory(tmp_path, suffix):
    """95 MB of short rows took 62 s and 5 GB to read before reading stopped at MAX_ROWS."""
    path = tmp_path / f"many{suffix}"
    with path.open("w", encoding="utf-8") as handle:
        handle.write("input,output\n" if suffix == ".csv" else "")
        line = "w{},x\n" if suffix == ".csv" else '{{"input":"w{}","output":"x"}}\n'
        for start in range(0, 3_000_000, 100_000):
            handle.write("".join(line.format(i) for i in range(start, start + 100_000)))
    assert path.stat().st_size > 30_000_000
    done = subprocess.run([sys.executable, "-c", PEAK_MEMORY, str(path)], text=True,
                          capture_output=True, timeout=120)
    assert f"more than {MAX_ROWS:,} examples" in done.stderr
    grown_mb = int(done.stdout.strip())
    assert grown_mb < 8 * path.stat().st_size / 1e6, f"{grown_mb} MB"


# -- the command line and the project -------------------------------------------------------


def test_import_of_deep_json_exits_2_with_a_message_and_leaves_the_project(tmp_path, capsys):
    good = write(tmp_path / "good.jsonl",
                 "".join(json.dumps({"input": f"w{i}", "output": "x"}) + "\n"
                         for i in range(10)))
    deep = write(tmp_path / "deep.json", "[" * DEEP + "]" * DEEP)
    workspace = str(tmp_path / "ws")
    assert main(["--workspace", workspace, "new", "d", "--data", str(good)]) == 0
    capsys.readouterr()
    assert main(["--workspace", workspace, "import", "d", "--data", str(deep)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("promptstudio: 'deep.json', line 1: the JSON here is nested")
    assert "Traceback" not in captured.err and "RecursionError" not in captured.err
    assert main(["--workspace", workspace, "show", "d"]) == 0
    assert "examples: {'train': 8, 'dev': 2, 'test': 0}" in capsys.readouterr().out


def test_a_deep_json_setting_on_the_command_line_is_taken_as_text():
    from promptstudio.cli import _parse_setting

    assert _parse_setting("k=" + "[" * DEEP) == ("k", "[" * DEEP)
    assert _parse_setting("k=" + "[" * DEEP + "]" * DEEP)[1].startswith("[[[")


# -- model files ----------------------------------------------------------------------------


def _gguf(tmp_path: Path, body: bytes, kv_count: int = 1, tensor_count: int = 0) -> Path:
    path = tmp_path / "damaged.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, tensor_count, kv_count) + body
                     + b"\0" * 64)
    return path


def _name(text: str) -> bytes:
    return struct.pack("<Q", len(text)) + text.encode()


@pytest.mark.parametrize(("body", "counts", "said"), [
    (_name("a") + struct.pack("<IIQ", 9, 0, 2**60), (1, 0), "truncated"),  # 2^60 bytes
    (_name("a") + struct.pack("<IIQ", 9, 8, 2**40), (1, 0), "truncated"),  # 2^40 strings
    (_name("t") + struct.pack("<I", 2**31), (0, 1), "dimensions"),  # 2^31 dimensions
    (b"", (2**62, 0), "truncated"),  # 2^62 metadata entries
    # A list of two strings, the second longer than the file, then one of 2^30 bytes.
    (_name("a") + struct.pack("<IIQ", 9, 8, 2) + _name("x") + struct.pack("<Q", 500),
     (1, 0), "truncated"),
    (_name("a") + struct.pack("<IIQ", 9, 8, 2) + _name("x") + struct.pack("<Q", 2**30),
     (1, 0), "damaged"),
])
def test_a_gguf_header_with_wild_counts_is_refused_at_once(tmp_path, body, counts, said):
    kv_count, tensor_count = counts
    with pytest.raises(ModelFileError, match=said):
        inspect_gguf(_gguf(tmp_path, body, kv_count, tensor_count))
