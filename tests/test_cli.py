"""The command line, end to end, on the real bundled model."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from task_data import data_file, data_rows, write_jsonl

from promptstudio.cli import main
from promptstudio.optimize import runner
from promptstudio.optimize.budget import Budget
from promptstudio.store.workspace import Workspace

pytestmark = pytest.mark.model


@pytest.fixture
def sentiment(tmp_path):
    """The whole sentiment train file (200 rows: 160 train, 40 dev) and 12 test rows."""
    test = write_jsonl(tmp_path / "sentiment-test.jsonl", data_rows("sentiment", "test", 12))
    return data_file("sentiment", "train"), test


def test_new_import_eval_export_list_show(cli, sentiment, tmp_path, local_backend):
    train, test = sentiment
    code, out, _ = cli("new", "s", "--data", str(train))
    assert code == 0 and "160 train, 40 dev" in out
    code, out, _ = cli("import", "s", "--data", str(test), "--split", "test")
    assert code == 0 and "12 test" in out

    code, out, _ = cli("eval", "s", "--instruction", "Classify the sentiment.", "--demos", "3",
                       "--split", "test")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[-1].startswith("accuracy: ")
    accuracy = float(lines[-1].split()[1])
    assert 0.5 <= accuracy <= 1.0
    assert sum(1 for line in lines if line.split()[0].isdigit()) == 12

    code, out, _ = cli("eval", "s", "--instruction", "Classify the sentiment.", "--demos", "3",
                       "--split", "test", "--json")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["accuracy"] == pytest.approx(accuracy, abs=1e-4)
    assert summary["n"] == 12 and summary["llm_calls"] == 0, "all stored already"
    assert set(summary) >= {"accuracy", "n", "llm_calls", "tokens", "seconds"}

    card_md = tmp_path / "best.md"
    assert cli("export", "s", "--what", "best", "--format", "md", "--out", str(card_md))[0] == 0
    text = card_md.read_text()
    assert "Classify the sentiment." in text and "| test |" in text and "normalized_exact" in text
    card_json = tmp_path / "best.json"
    cli("export", "s", "--what", "best", "--format", "json", "--out", str(card_json))
    card = json.loads(card_json.read_text())
    assert card["instruction"] == "Classify the sentiment." and len(card["demos"]) == 3
    assert card["scores"]["test"]["examples"] == 12
    assert "{input}" in card["prompt"]
    card_yaml = tmp_path / "best.yaml"
    cli("export", "s", "--what", "best", "--format", "yaml", "--out", str(card_yaml))
    assert yaml.safe_load(card_yaml.read_text())["instruction"] == "Classify the sentiment."
    card_txt = tmp_path / "best.txt"
    cli("export", "s", "--what", "best", "--format", "txt", "--out", str(card_txt))
    assert card_txt.read_text().startswith("Instruction: Classify the sentiment.\n\nInput: ")

    data_csv = tmp_path / "data.csv"
    assert cli("export", "s", "--what", "data", "--format", "csv", "--out", str(data_csv))[0] == 0
    exported = data_csv.read_text(encoding="utf-8-sig").strip().splitlines()
    assert len(exported) == 1 + 160 + 40 + 12, "a header, then every row"

    code, out, _ = cli("list", "--json")
    assert [p["name"] for p in json.loads(out)] == ["s"]
    code, out, _ = cli("show", "s", "--json")
    shown = json.loads(out)
    assert shown["examples"] == {"train": 160, "dev": 40, "test": 12}
    assert shown["task_model"].endswith("(bundled)")


def test_user_errors_are_one_line_messages(cli, tmp_path, sentiment):
    code, _, err = cli("show", "nope")
    assert code == 2 and "no project named 'nope'" in err
    bad = tmp_path / "bad.csv"
    bad.write_text("input,output\nonly one field\n")
    code, _, err = cli("new", "broken", "--data", str(bad))
    assert code == 2 and "bad.csv" in err and "line 2" in err
    assert not list(cli.workspace.glob("*.sqlite")), "a failed import leaves no project behind"
    train, _ = sentiment
    assert cli("new", "s", "--data", str(train))[0] == 0
    code, _, err = cli("new", "s", "--data", str(train))
    assert code == 2 and "already exists" in err
    code, _, err = cli("eval", "s", "--instruction", "x", "--split", "test")
    assert code == 2 and "no test rows" in err


def test_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in ("new", "import", "eval", "export", "list", "show"):
        assert command in out


def test_docs_methods_is_what_the_methods_command_prints(capsys):
    """docs/methods.md is generated from the methods and the proposal: a change to either
    that is not regenerated would leave the docs saying what the app no longer does."""
    assert main(["methods", "--markdown"]) == 0
    docs = Path(__file__).resolve().parents[1] / "docs" / "methods.md"
    assert capsys.readouterr().out == docs.read_text(encoding="utf-8"), (
        "regenerate it: promptstudio methods --markdown > docs/methods.md")


def test_interrupting_an_evaluation_keeps_only_complete_rows(cli, sentiment, tmp_path):
    train, _ = sentiment
    cli("new", "s", "--data", str(train))
    database = cli.workspace / "s.sqlite"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # Ctrl-C as in a terminal: a test run started in the background has SIGINT ignored, and
    # its children would inherit that (Python then leaves SIGINT ignored too).
    process = subprocess.Popen(
        [sys.executable, "-m", "promptstudio", "--workspace", str(cli.workspace), "eval", "s",
         "--instruction", "Classify the sentiment.", "--demos", "3", "--split", "dev"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    count = 0
    while time.monotonic() < deadline and count < 5:
        time.sleep(0.3)
        with sqlite3.connect(database) as conn:
            count = conn.execute("SELECT COUNT(*) FROM evaluation").fetchone()[0]
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert b"finished evaluations are saved" in err
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT raw_output, answer, score FROM evaluation").fetchall()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert 5 <= len(rows) < 40
    assert all(raw is not None and answer is not None and score in (0.0, 1.0)
               for raw, answer, score in rows)


def test_config_sets_the_two_models_separately(cli, sentiment):
    train, _ = sentiment
    cli("new", "s", "--data", str(train))
    code, out, _ = cli("config", "s", "--optimizer-model", "http://127.0.0.1:8080/v1#big",
                       "--template", "Task: {instruction}\\n{demos}Q: {input}\\nA:")
    assert code == 0
    assert "task model: Gemma 3 270M (Q4_K_M) (bundled)" in out
    assert "optimizer model: big at http://127.0.0.1:8080/v1" in out
    code, out, _ = cli("show", "s", "--json")
    shown = json.loads(out)
    assert shown["template"] == "Task: {instruction}\n{demos}Q: {input}\nA:"
    code, _, err = cli("config", "s", "--template", "no input slot here {instruction}")
    assert code == 2 and "{input}" in err
    assert json.loads(cli("show", "s", "--json")[1])["template"].startswith("Task:")


def test_runs_name_the_follow_up_and_its_turns(cli, sentiment):
    train, _ = sentiment
    cli("new", "s", "--data", str(train))
    project = Workspace(cli.workspace).open("s")
    for then, turns in ((None, 1), ("demos", 1), ("demos", 2)):
        plan = runner.plan(project, "ape", then=then, turns=turns)
        runner.create_run(project, plan, preset="quick", seed=0, budget=Budget())
    project.close()
    code, out, _ = cli("runs", "s", "--json")
    listed = json.loads(out.strip().splitlines()[-1])
    assert [(r["then"], r["turns"]) for r in listed] == [(None, 1), ("demos", 1), ("demos", 2)]
    code, out, _ = cli("runs", "s")
    assert [line.split()[1] for line in out.splitlines()] == ["ape", "ape+demos", "ape+demos×2"]
    code, _, err = cli("optimize", "s", "--method", "ape", "--turns", "2")
    assert code != 0 and "follow-up" in err


def test_optimize_without_a_method_runs_the_proposal_within_its_call_limit(cli, tmp_path):
    """No --method: the method proposed for the bundled optimizer model runs, and --json
    names it. The call limit covers choosing and reporting the best prompt too."""
    data = write_jsonl(tmp_path / "letters.jsonl", data_rows("first_letter", "train", 40))
    cli("new", "s", "--data", str(data))
    cli("config", "s", "--instruction", "Write the first letter of the word.")
    code, out, err = cli("optimize", "s", "--max-calls", "120", "--json")
    assert code == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert (result["method"], result["then"], result["preset"]) == ("demos", None, "thorough")
    assert result["why"] and result["kept"] in ("start", "found", "new demonstrations")
    assert result["requested_calls"] <= 120 and result["llm_calls"] <= 120


def test_again_repeats_a_run_exactly_on_this_machine(cli, tmp_path):
    """`again` starts a run with another's settings and seed, says what it reproduces,
    and on the same model and build ends with the same prompt and scores."""
    data = write_jsonl(tmp_path / "letters.jsonl", data_rows("first_letter", "train", 30))
    cli("new", "s", "--data", str(data))
    cli("config", "s", "--instruction", "Write the first letter of the word.")
    code, out, err = cli("optimize", "s", "--method", "demos", "--seed", "3", "--set",
                         "random_sets=3", "--set", "layouts=1", "--set", "orders=1", "--json")
    assert code == 0, err
    first = json.loads(out.strip().splitlines()[-1])
    code, out, err = cli("again", "s:1", "--json")
    assert code == 0, err
    assert "same settings and seed (3) as run 1" in err
    second = json.loads(out.strip().splitlines()[-1])
    for key in ("best_instruction", "best_demos", "dev_score", "test_score", "why"):
        assert second[key] == first[key], key
    code, out, _ = cli("runs", "s", "--json")
    assert [run["seed"] for run in json.loads(out)] == [3, 3]
    project = Workspace(cli.workspace).open("s")
    assert [run.params["random_sets"] for run in project.runs()] == [3, 3]
    project.close()


def test_a_method_that_needs_a_capable_writer_warns_but_runs(cli, tmp_path):
    data = write_jsonl(tmp_path / "letters.jsonl", data_rows("first_letter", "train", 40))
    cli("new", "s", "--data", str(data))
    code, out, err = cli("optimize", "s", "--method", "opro", "--set", "steps=1",
                         "--set", "per_step=2", "--set", "train_size=4")
    assert code == 0
    assert "Note: OPRO asks the optimizer model, Gemma 3 270M (Q4_K_M) (bundled)" in err
    assert "Why: " in out, "the run finished and says why its best prompt is the one"


def test_a_call_limit_too_small_to_choose_is_refused_before_the_model_loads(cli, tmp_path):
    data = write_jsonl(tmp_path / "letters.jsonl", data_rows("first_letter", "train", 40))
    cli("new", "s", "--data", str(data))
    code, _, err = cli("optimize", "s", "--method", "demos", "--max-calls", "5")
    assert code == 2 and "leaves nothing to search with" in err
