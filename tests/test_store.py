"""The project store: one SQLite file per project (no model needed)."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from promptstudio.dataio import Row
from promptstudio.llm.config import ModelConfig
from promptstudio.parsing import OutputParser
from promptstudio.store import Evaluation, Project, ProjectError, ProjectSettings, SchemaError
from promptstudio.store.records import fingerprint
from promptstudio.store.schema import MIGRATIONS, migrate, schema_version
from promptstudio.templates import TemplateError

SECRET = "sk-do-not-store-me"


# -- helpers --------------------------------------------------------------------------


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = Project.create(tmp_path / "capitals.sqlite", ProjectSettings(name="Capitals"))
    yield project
    project.close()


def rows(*pairs: tuple[str, str], split: str | None = None) -> list[Row]:
    return [Row(input=question, output=answer, answers=(), split=split)
            for question, answer in pairs]


def in_thread(function: Callable[[], object]) -> object:
    """Call `function` in a fresh thread and return what it returned (or raise what it raised)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result(timeout=30)


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def evaluation(candidate_id: int, example_id: int, score: float, model: str = "m1",
               answer: str = "x", scoring: str = "s1") -> Evaluation:
    return Evaluation(candidate_id=candidate_id, example_id=example_id, model=model,
                      raw_output=f" {answer}\nmore text", answer=answer, score=score,
                      prompt_tokens=12, completion_tokens=3, latency=0.25, scoring=scoring)


def with_splits(project: Project) -> dict[str, list[int]]:
    """Two train, three dev and two test examples; their ids by split."""
    return {
        "train": project.add_examples(rows(("France", "Paris"), ("Spain", "Madrid")), "train"),
        "dev": project.add_examples(
            rows(("Italy", "Rome"), ("Peru", "Lima"), ("Chile", "Santiago")), "dev"),
        "test": project.add_examples(rows(("Japan", "Tokyo"), ("Kenya", "Nairobi")), "test"),
    }


def delete(project: Project, table: str, row_id: int) -> None:
    with project.transaction() as conn:
        conn.execute(f"DELETE FROM {table} WHERE id = ?", (row_id,))


def count(project: Project, table: str) -> int:
    return project.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]


# -- settings -------------------------------------------------------------------------


FULL_SETTINGS = ProjectSettings(
    name="Sentiment",
    task_description="Label each review as positive or negative.",
    template="Task: {instruction}\n\n{demos}Review: {input}\nLabel:",
    demo_format="Review: {input}\nLabel: {output}\n\n",
    instruction="Answer with one word.",
    output_parser=OutputParser(mode="full", regex=r"(?i)\b(positive|negative)\b"),
    metric="label",
    tolerance=0.01,
    labels=("positive", "negative", "gemischt / mixed"),
    task_model=ModelConfig(kind="server", base_url="http://127.0.0.1:8080/v1", model="qwen",
                           api_key=SECRET, concurrency=2, timeout=30.0, retries=1),
    optimizer_model=ModelConfig(path="/models/helper.gguf", n_ctx=2048, n_threads=2),
)


def test_settings_survive_closing_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "sentiment.sqlite"
    Project.create(path, FULL_SETTINGS).close()

    reopened = Project.open(path)
    try:
        loaded = reopened.settings
    finally:
        reopened.close()

    assert loaded == replace(FULL_SETTINGS,
                             task_model=replace(FULL_SETTINGS.task_model, api_key=None))
    assert loaded.labels == ("positive", "negative", "gemischt / mixed")
    assert loaded.output_parser.regex == r"(?i)\b(positive|negative)\b"


def test_api_key_never_reaches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sentiment.sqlite"
    project = Project.create(path, FULL_SETTINGS)
    project.add_run("random_search")  # runs copy the model settings too
    stored = json.loads(project.conn.execute("SELECT task_model FROM project").fetchone()[0])
    project.close()

    assert "api_key" not in stored
    assert stored["base_url"] == "http://127.0.0.1:8080/v1"
    assert not Path(f"{path}-wal").exists()
    assert SECRET.encode() not in path.read_bytes()


def test_update_settings_is_saved(tmp_path: Path) -> None:
    path = tmp_path / "capitals.sqlite"
    project = Project.create(path, ProjectSettings(name="Capitals"))
    returned = project.update_settings(instruction="Name the capital.", labels=("a", "b"))
    project.close()

    reopened = Project.open(path)
    try:
        assert reopened.settings == returned
        assert reopened.settings.instruction == "Name the capital."
        assert reopened.settings.labels == ("a", "b")
    finally:
        reopened.close()


@pytest.mark.parametrize(("changes", "error"), [
    ({"template": "Instruction: {instruction}\nOutput:"}, TemplateError),
    ({"demo_format": "Q: {input}\n"}, TemplateError),
    ({"output_parser": OutputParser(regex="(unclosed")}, ValueError),
    ({"output_parser": OutputParser(mode="last_line")}, ValueError),
])
def test_update_settings_rejects_unusable_settings_and_keeps_the_old_ones(
        project: Project, changes: dict, error: type[Exception]) -> None:
    before = project.settings
    with pytest.raises(error):
        project.update_settings(instruction="changed too", **changes)
    assert project.settings == before


# -- the connection -------------------------------------------------------------------


def test_connection_uses_wal_and_enforces_foreign_keys(project: Project) -> None:
    assert project.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert project.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_worker_thread_connection_enforces_foreign_keys_too(project: Project) -> None:
    assert in_thread(lambda: project.conn.execute("PRAGMA foreign_keys").fetchone()[0]) == 1


def test_each_thread_gets_its_own_connection_and_reads_while_another_writes(
        project: Project) -> None:
    project.add_examples(rows(("France", "Paris")), "train")
    main = project.conn
    main.execute("BEGIN IMMEDIATE")
    main.execute("INSERT INTO example (input, output, answers, split, created) "
                 "VALUES ('Spain', 'Madrid', '[\"Madrid\"]', 'train', 'now')")
    try:
        worker_conn, worker_inputs = in_thread(
            lambda: (project.conn, [e.input for e in project.examples()]))
    finally:
        main.rollback()

    assert project.conn is main
    assert worker_conn is not main
    assert worker_inputs == ["France"]  # the uncommitted row is invisible, and nothing blocks


def test_writes_from_a_worker_thread_are_visible_to_the_main_thread(project: Project) -> None:
    assert project.examples() == []  # the main thread's connection is open before the write
    ids = in_thread(lambda: project.add_examples(rows(("France", "Paris")), "dev"))
    assert [example.id for example in project.examples()] == ids
    assert project.split_counts()["dev"] == 1


def test_integrity_check_reports_ok(project: Project) -> None:
    with_splits(project)
    assert project.integrity_check() == "ok"


# -- schema and migrations ------------------------------------------------------------


def test_new_project_reaches_the_newest_schema(project: Project) -> None:
    assert schema_version(project.conn) == len(MIGRATIONS)
    assert {"project", "example", "run", "candidate", "evaluation", "llm_call"} <= table_names(
        project.conn)


def test_migrate_twice_changes_nothing(project: Project) -> None:
    assert migrate(project.conn) == len(MIGRATIONS)


def test_project_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.sqlite"
    Project.create(path, ProjectSettings(name="Future")).close()
    newer = len(MIGRATIONS) + 1
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {newer}")

    with pytest.raises(SchemaError, match="Update PromptStudio"):
        Project.open(path)

    with sqlite3.connect(path) as conn:
        assert schema_version(conn) == newer


def _create_notes(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE notes (text TEXT)")


def test_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    def breaks_half_way(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    path = tmp_path / "migrating.sqlite"
    conn = sqlite3.connect(path)
    with pytest.raises(RuntimeError, match="disk on fire"):
        migrate(conn, [_create_notes, breaks_half_way])
    conn.close()

    with sqlite3.connect(path) as fresh:
        assert schema_version(fresh) == 1
        assert table_names(fresh) == {"notes"}


def test_migrations_run_in_order_from_an_older_version(tmp_path: Path) -> None:
    ran: list[int] = []

    def step(number: int, sql: str) -> Callable[[sqlite3.Connection], None]:
        def migration(conn: sqlite3.Connection) -> None:
            ran.append(number)
            conn.execute(sql)
        return migration

    steps = [
        step(1, "CREATE TABLE note (text TEXT)"),
        step(2, "ALTER TABLE note ADD COLUMN author TEXT"),  # needs step 1
        step(3, "CREATE INDEX note_author ON note (author)"),  # needs step 2
    ]
    conn = sqlite3.connect(tmp_path / "old.sqlite")
    try:
        assert migrate(conn, steps[:1]) == 1
        assert migrate(conn, steps) == 3
        assert migrate(conn, steps) == 3
        assert ran == [1, 2, 3]
        assert [column[1] for column in conn.execute("PRAGMA table_info(note)")] == [
            "text", "author"]
    finally:
        conn.close()


# -- opening things that are not projects ---------------------------------------------


def _text_file(path: Path) -> None:
    path.write_text("input,output\nFrance,Paris\n" * 50)


def _zero_bytes(path: Path) -> None:
    path.write_bytes(b"")


def _other_apps_database(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE bookmarks (url TEXT)")
        conn.execute("INSERT INTO bookmarks VALUES ('https://example.org')")
    conn.close()


@pytest.mark.parametrize("make", [_text_file, _zero_bytes, _other_apps_database])
def test_opening_a_file_that_is_not_a_project_fails_and_leaves_it_alone(
        tmp_path: Path, make: Callable[[Path], None]) -> None:
    path = tmp_path / "not-a-project.sqlite"
    make(path)
    before = path.read_bytes()

    with pytest.raises(ProjectError, match=re.escape(path.name)):
        Project.open(path)

    assert path.read_bytes() == before
    assert not Path(f"{path}-wal").exists()


def test_opening_a_project_database_without_its_project_row_fails(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    with sqlite3.connect(path) as conn:
        migrate(conn)
    conn.close()

    with pytest.raises(ProjectError, match="holds no PromptStudio project"):
        Project.open(path)


def test_opening_a_missing_path_fails_without_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.sqlite"
    with pytest.raises(ProjectError, match="no project file"):
        Project.open(path)
    assert not path.exists()


def test_creating_over_an_existing_file_fails(project: Project) -> None:
    with pytest.raises(ProjectError, match="already exists"):
        Project.create(project.path, ProjectSettings(name="Again"))


# -- examples -------------------------------------------------------------------------


def test_add_examples_returns_the_ids_it_stored(project: Project) -> None:
    first = project.add_examples(rows(("France", "Paris"), ("Spain", "Madrid")), "train")
    second = project.add_examples(rows(("Italy", "Rome")), "dev")

    stored = project.examples()
    assert [e.id for e in stored] == first + second
    assert [(e.input, e.output, e.split) for e in stored] == [
        ("France", "Paris", "train"), ("Spain", "Madrid", "train"), ("Italy", "Rome", "dev")]


def test_each_row_keeps_its_own_split_unless_one_is_given(project: Project) -> None:
    mixed = [Row("France", "Paris", (), "train"), Row("Italy", "Rome", (), "test")]
    project.add_examples(mixed)
    project.add_examples(mixed, split="dev")
    assert project.split_counts() == {"train": 1, "dev": 2, "test": 1}


@pytest.mark.parametrize("bad_split", [None, "", "validation", "Train"])
def test_a_batch_with_an_invalid_split_inserts_nothing(
        project: Project, bad_split: str | None) -> None:
    batch = [Row("France", "Paris", (), "train"), Row("Italy", "Rome", (), bad_split),
             Row("Peru", "Lima", (), "dev")]
    with pytest.raises(ProjectError, match="Italy"):
        project.add_examples(batch)
    assert project.examples() == []


def test_a_large_batch_that_fails_in_the_database_inserts_nothing(project: Project) -> None:
    batch = [Row(f"question {i}", f"answer {i}", (), "train") for i in range(600)]
    batch.append(Row(None, "no input", (), "train"))  # type: ignore[arg-type]  # NOT NULL
    with pytest.raises(sqlite3.IntegrityError):
        project.add_examples(batch)
    assert project.split_counts() == {"train": 0, "dev": 0, "test": 0}


def test_ids_of_a_large_batch_match_the_stored_rows(project: Project) -> None:
    project.add_examples(rows(("first", "1")), "dev")
    batch = [Row(f"question {i}", f"answer {i}", (), "train") for i in range(600)]
    ids = project.add_examples(batch)
    assert [e.input for e in project.examples(ids=ids)] == [row.input for row in batch]


def test_examples_filter_by_split(project: Project) -> None:
    ids = with_splits(project)
    for split, expected in ids.items():
        assert [e.id for e in project.examples(split=split)] == expected
        assert {e.split for e in project.examples(split=split)} == {split}


def test_examples_by_id_come_back_in_the_order_asked(project: Project) -> None:
    ids = with_splits(project)
    wanted = [ids["test"][1], ids["train"][0], ids["dev"][2], 999]
    assert [e.id for e in project.examples(ids=wanted)] == wanted[:3]
    assert [e.id for e in project.examples(ids=wanted, split="train")] == [ids["train"][0]]
    assert project.examples(ids=[]) == []


def test_examples_limit(project: Project) -> None:
    ids = with_splits(project)
    assert [e.id for e in project.examples(limit=3)] == (ids["train"] + ids["dev"])[:3]


def test_split_counts_include_empty_splits(project: Project) -> None:
    assert project.split_counts() == {"train": 0, "dev": 0, "test": 0}
    with_splits(project)
    assert project.split_counts() == {"train": 2, "dev": 3, "test": 2}


def test_answers_are_a_json_list_led_by_the_output_when_none_are_given(
        project: Project) -> None:
    [plain, listed] = project.add_examples([
        Row("Germany", "Berlin", ()),
        Row("Côte d'Ivoire", "Yamoussoukro", ("Yamoussoukro", "Abidjan")),
    ], split="dev")
    raw = dict(project.conn.execute("SELECT id, answers FROM example"))

    assert json.loads(raw[plain]) == ["Berlin"]
    assert json.loads(raw[listed]) == ["Yamoussoukro", "Abidjan"]
    assert "Côte" in project.examples(ids=[listed])[0].input
    assert project.examples(ids=[plain])[0].answers == ("Berlin",)


# -- candidates -----------------------------------------------------------------------


def test_same_instruction_and_demos_in_a_run_is_one_candidate(project: Project) -> None:
    with_splits(project)  # the rows the demonstrations come from
    run = project.add_run("random_search")
    first = project.add_candidate("Name the capital.", [1, 2], run_id=run.id,
                                  meta={"note": "first"})
    again = project.add_candidate("Name the capital.", (1, 2), run_id=run.id,
                                  meta={"note": "second"})

    assert again == first
    assert again.meta == {"note": "first"}
    assert len(project.candidates(run.id)) == 1


def test_same_prompt_in_another_run_is_a_new_candidate(project: Project) -> None:
    with_splits(project)  # the rows the demonstrations come from
    one, two = project.add_run("random_search"), project.add_run("random_search")
    ids = {
        project.add_candidate("Name the capital.", [1], run_id=one.id).id,
        project.add_candidate("Name the capital.", [1], run_id=two.id).id,
        project.add_candidate("Name the capital.", [1]).id,  # a manual one, in no run
    }
    assert len(ids) == 3
    assert project.add_candidate("Name the capital.", [1]).id in ids


def test_demo_order_is_part_of_a_candidate(project: Project) -> None:
    with_splits(project)  # the rows the demonstrations come from
    assert fingerprint("Name it.", (1, 2)) != fingerprint("Name it.", (2, 1))
    assert fingerprint("Name it.", (1, 2)) != fingerprint("Name it!", (1, 2))
    assert fingerprint("Name it.", (1, 2)) == fingerprint("Name it.", (1, 2))

    forward = project.add_candidate("Name it.", [1, 2])
    backward = project.add_candidate("Name it.", [2, 1])
    assert forward.id != backward.id
    stored = dict(project.conn.execute("SELECT id, fingerprint FROM candidate"))
    assert stored == {forward.id: fingerprint("Name it.", (1, 2)),
                      backward.id: fingerprint("Name it.", (2, 1))}


def test_candidate_fields_round_trip(project: Project) -> None:
    with_splits(project)  # the rows the demonstrations come from
    run = project.add_run("evolution")
    parent_a = project.add_candidate("Be brief.", [], run_id=run.id)
    parent_b = project.add_candidate("Be exact.", [3], run_id=run.id)
    child = project.add_candidate(
        "Be brief and exact.", [3, 1], run_id=run.id, parent_ids=[parent_a.id, parent_b.id],
        operation="crossover", step=4, origin="optimizer model",
        meta={"critique": "too long", "temperature": 0.7, "ok": ["ä", 1]},
    )

    loaded = project.candidate(child.id)
    assert loaded.instruction == "Be brief and exact."
    assert loaded.demo_ids == (3, 1)
    assert loaded.run_id == run.id
    assert loaded.parent_ids == (parent_a.id, parent_b.id)
    assert (loaded.operation, loaded.step, loaded.origin) == ("crossover", 4, "optimizer model")
    assert loaded.meta == {"critique": "too long", "temperature": 0.7, "ok": ["ä", 1]}
    assert [c.id for c in project.candidates(run.id)] == [parent_a.id, parent_b.id, child.id]
    assert project.candidates() == []


# -- evaluations ----------------------------------------------------------------------


def test_saved_evaluations_come_back_by_example(project: Project) -> None:
    dev = with_splits(project)["dev"]
    candidate = project.add_candidate("Name the capital.")
    saved = [evaluation(candidate.id, dev[0], 1.0), evaluation(candidate.id, dev[1], 0.0)]
    for item in [*saved, evaluation(candidate.id, dev[0], 0.5, model="m2")]:
        project.save_evaluation(item)

    assert project.evaluations(candidate.id, "m1") == {dev[0]: saved[0], dev[1]: saved[1]}
    assert project.evaluations(candidate.id, "m2")[dev[0]].score == 0.5
    assert list(project.evaluations(candidate.id, "m1", example_ids=[dev[1]])) == [dev[1]]
    assert project.evaluations(candidate.id, "unknown model") == {}


def test_evaluating_the_same_example_again_replaces_the_old_result(project: Project) -> None:
    dev = with_splits(project)["dev"]
    candidate = project.add_candidate("Name the capital.")
    project.save_evaluation(evaluation(candidate.id, dev[0], 0.0, answer="Milan"))
    project.save_evaluation(evaluation(candidate.id, dev[0], 1.0, answer="Rome"))

    assert count(project, "evaluation") == 1
    assert project.evaluations(candidate.id, "m1")[dev[0]].answer == "Rome"


def test_deleting_a_candidate_deletes_its_evaluations(project: Project) -> None:
    dev = with_splits(project)["dev"]
    doomed = project.add_candidate("Doomed.")
    kept = project.add_candidate("Kept.")
    for example_id in dev:
        project.save_evaluation(evaluation(doomed.id, example_id, 1.0))
        project.save_evaluation(evaluation(kept.id, example_id, 1.0))

    delete(project, "candidate", doomed.id)

    assert project.evaluations(doomed.id) == {}
    assert len(project.evaluations(kept.id)) == len(dev)


def test_deleting_an_example_deletes_its_evaluations(project: Project) -> None:
    dev = with_splits(project)["dev"]
    candidate = project.add_candidate("Name the capital.")
    for example_id in dev:
        project.save_evaluation(evaluation(candidate.id, example_id, 1.0))

    delete(project, "example", dev[0])

    assert set(project.evaluations(candidate.id)) == set(dev[1:])


def test_deleting_a_run_deletes_its_candidates_and_their_evaluations(project: Project) -> None:
    dev = with_splits(project)["dev"]
    run = project.add_run("random_search")
    candidate = project.add_candidate("In the run.", run_id=run.id)
    manual = project.add_candidate("Manual.")
    project.save_evaluation(evaluation(candidate.id, dev[0], 1.0))

    delete(project, "run", run.id)

    assert [c.id for c in project.candidates()] == [manual.id]
    assert count(project, "candidate") == 1
    assert count(project, "evaluation") == 0


def test_deleting_a_runs_best_candidate_clears_the_link(project: Project) -> None:
    run = project.add_run("random_search")
    candidate = project.add_candidate("Best.")
    project.update_run(run.id, best_candidate_id=candidate.id)

    delete(project, "candidate", candidate.id)

    assert project.run(run.id).best_candidate_id is None


def test_an_evaluation_of_a_missing_candidate_is_rejected(project: Project) -> None:
    dev = with_splits(project)["dev"]
    with pytest.raises(sqlite3.IntegrityError):
        project.save_evaluation(evaluation(999, dev[0], 1.0))
    assert count(project, "evaluation") == 0


def test_mean_score_averages_one_split(project: Project) -> None:
    ids = with_splits(project)
    candidate = project.add_candidate("Name the capital.")
    for example_id, score in zip(ids["dev"], [1.0, 0.0, 0.5]):
        project.save_evaluation(evaluation(candidate.id, example_id, score))
    project.save_evaluation(evaluation(candidate.id, ids["test"][0], 0.0))
    project.save_evaluation(evaluation(candidate.id, ids["dev"][0], 0.0, model="m2"))

    assert project.mean_score(candidate.id, "dev", "m1") == (pytest.approx(0.5), 3)
    assert project.mean_score(candidate.id, "test", "m1") == (0.0, 1)
    assert project.mean_score(candidate.id, "dev", "m2") == (0.0, 1)
    assert project.mean_score(candidate.id, "dev") == (pytest.approx(1.5 / 4), 4)
    assert project.mean_score(candidate.id, "train") == (None, 0)


def test_best_candidate_has_the_highest_dev_mean(project: Project) -> None:
    ids = with_splits(project)
    assert project.best_candidate("dev", "s1") is None

    steady = project.add_candidate("Steady.")
    lucky_on_test = project.add_candidate("Lucky on test.")
    for example_id, score in zip(ids["dev"], [1.0, 1.0, 0.0]):
        project.save_evaluation(evaluation(steady.id, example_id, score))
    for example_id in ids["dev"]:
        project.save_evaluation(evaluation(lucky_on_test.id, example_id, 0.0))
    for example_id in ids["test"]:
        project.save_evaluation(evaluation(lucky_on_test.id, example_id, 1.0))

    assert project.best_candidate("dev", "s1").id == steady.id
    assert project.best_candidate("test", "s1").id == lucky_on_test.id


def test_best_candidate_ties_go_to_more_examples_then_the_oldest(project: Project) -> None:
    dev = with_splits(project)["dev"]
    older, newer, wider = (project.add_candidate(text) for text in ("Older.", "Newer.", "Wider."))
    project.save_evaluation(evaluation(older.id, dev[0], 1.0))
    project.save_evaluation(evaluation(newer.id, dev[0], 1.0))
    assert project.best_candidate("dev", "s1").id == older.id

    project.save_evaluation(evaluation(wider.id, dev[0], 1.0))
    project.save_evaluation(evaluation(wider.id, dev[1], 1.0))
    assert project.best_candidate("dev", "s1").id == wider.id


# -- runs -----------------------------------------------------------------------------


def test_runs_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    project = Project.create(path, FULL_SETTINGS)
    first = project.add_run("random_search", params={"candidates": 8}, seed=7, preset="quick",
                            budget={"calls": 500})
    second = project.add_run("evolution")
    candidate = project.add_candidate("Best so far.", run_id=first.id)
    project.update_run(first.id, status="finished", best_candidate_id=candidate.id,
                       llm_calls=42, tokens=1234, seconds=3.5, rejected_candidates=2,
                       params={"candidates": 9}, started="2024-01-01T00:00:00+00:00")
    project.update_run(second.id, status="failed", error="The server did not answer.")
    project.close()

    reopened = Project.open(path)
    try:
        runs = reopened.runs()
        stored_model = json.loads(reopened.conn.execute(
            "SELECT task_model FROM run WHERE id = ?", (first.id,)).fetchone()[0])
    finally:
        reopened.close()

    assert [run.id for run in runs] == [first.id, second.id]
    done, failed = runs
    assert (done.method, done.preset, done.seed, done.status) == (
        "random_search", "quick", 7, "finished")
    assert done.params == {"candidates": 9}
    assert done.budget == {"calls": 500}
    assert done.best_candidate_id == candidate.id
    assert (done.llm_calls, done.tokens, done.seconds, done.rejected_candidates) == (
        42, 1234, 3.5, 2)
    assert done.created
    assert (failed.status, failed.error, failed.params) == (
        "failed", "The server did not answer.", {})
    assert stored_model == FULL_SETTINGS.task_model.to_dict()


def test_a_new_run_is_pending(project: Project) -> None:
    run = project.add_run("random_search")
    assert (run.status, run.params, run.budget, run.best_candidate_id) == ("pending", {}, {}, None)


@pytest.mark.parametrize("action", [
    lambda project: project.run(999),
    lambda project: project.update_run(999, status="running"),
], ids=["run", "update_run"])
def test_an_unknown_run_id_is_a_project_error(
        project: Project, action: Callable[[Project], object]) -> None:
    project.add_run("random_search")
    with pytest.raises(ProjectError, match="999"):
        action(project)


def test_a_run_status_must_be_known(project: Project) -> None:
    run = project.add_run("random_search")
    with pytest.raises(sqlite3.IntegrityError):
        project.update_run(run.id, status="exploded")
    assert project.run(run.id).status == "pending"


# -- the LLM call cache ---------------------------------------------------------------


def call_record(text: str) -> dict:
    return {"op": "generate", "backend": "local", "model": "tiny.gguf",
            "params": {"temperature": 0.0, "max_tokens": 16}, "prompt": "Capital of Peru?",
            "response": {"text": text, "prompt_tokens": 5, "completion_tokens": 1},
            "prompt_tokens": 5, "completion_tokens": 1, "seconds": 0.1}


def test_cached_calls_round_trip(project: Project) -> None:
    assert project.cached_call("key-1") is None
    project.store_call("key-1", call_record("Lima"))

    assert project.cached_call("key-1") == {"text": "Lima", "prompt_tokens": 5,
                                            "completion_tokens": 1}
    op, params = project.conn.execute("SELECT op, params FROM llm_call").fetchone()
    assert (op, json.loads(params)) == ("generate", {"temperature": 0.0, "max_tokens": 16})


def test_storing_a_call_twice_keeps_the_first_answer(project: Project) -> None:
    project.store_call("key-1", call_record("Lima"))
    project.store_call("key-1", call_record("Cusco"))
    project.store_call("key-2", call_record("Quito"))

    assert project.cached_call("key-1")["text"] == "Lima"
    assert project.cache_size() == 2


# -- portability ----------------------------------------------------------------------


def _fill(project: Project) -> None:
    ids = with_splits(project)
    run = project.add_run("random_search", params={"candidates": 2})
    candidate = project.add_candidate("Name the capital.", ids["train"], run_id=run.id)
    for example_id in ids["dev"]:
        project.save_evaluation(evaluation(candidate.id, example_id, 1.0))
    project.update_run(run.id, status="finished", best_candidate_id=candidate.id)
    project.store_call("key-1", call_record("Lima"))


def _contents(project: Project) -> tuple:
    best = project.best_candidate("dev", "s1")
    return (project.settings, project.examples(), project.runs(), best,
            project.evaluations(best.id), project.cached_call("key-1"))


def test_a_copied_project_file_is_the_same_project(tmp_path: Path) -> None:
    original = Project.create(tmp_path / "home" / "capitals.sqlite", FULL_SETTINGS)
    _fill(original)
    expected = _contents(original)
    original.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    original.close()

    elsewhere = tmp_path / "usb stick" / "capitals.sqlite"
    elsewhere.parent.mkdir()
    shutil.copy(original.path, elsewhere)
    moved = Project.open(elsewhere)
    try:
        assert _contents(moved) == expected
        assert moved.integrity_check() == "ok"
    finally:
        moved.close()


def test_a_project_file_opens_with_plain_sqlite3(tmp_path: Path) -> None:
    project = Project.create(tmp_path / "capitals.sqlite", FULL_SETTINGS)
    _fill(project)
    project.close()

    conn = sqlite3.connect(tmp_path / "capitals.sqlite")
    try:
        counts = {table: len(conn.execute(f"SELECT * FROM {table}").fetchall())
                  for table in ("project", "example", "run", "candidate", "evaluation",
                                "llm_call")}
        name, labels = conn.execute("SELECT name, labels FROM project").fetchone()
    finally:
        conn.close()

    assert counts == {"project": 1, "example": 7, "run": 1, "candidate": 1, "evaluation": 3,
                      "llm_call": 1}
    assert (name, json.loads(labels)) == ("Sentiment", list(FULL_SETTINGS.labels))


def test_a_version_1_file_gains_the_meta_prompt_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as conn:
        migrate(conn, MIGRATIONS[:1])
        conn.execute(
            "INSERT INTO project (id, name, template, demo_format, created, updated) "
            "VALUES (1, 'old', '{input}', '{input} {output}', 'then', 'then')")
    project = Project.open(path)
    assert schema_version(project.conn) == len(MIGRATIONS) >= 2
    project.set_meta_prompt("opro", "my own words")
    assert project.meta_prompt("opro") == "my own words"
    project.set_meta_prompt("opro", None)
    assert project.meta_prompt("opro") is None
    assert project.name == "old"


def test_a_version_2_file_gains_the_chosen_candidate(tmp_path: Path) -> None:
    path = tmp_path / "v2.sqlite"
    with sqlite3.connect(path) as conn:
        migrate(conn, MIGRATIONS[:2])
        conn.execute(
            "INSERT INTO project (id, name, template, demo_format, created, updated) "
            "VALUES (1, 'v2', '{input}', '{input} {output}', 'then', 'then')")
    project = Project.open(path)
    assert schema_version(project.conn) == len(MIGRATIONS) >= 3
    assert project.chosen_candidate() is None
    assert project.name == "v2"
    project.close()


# -- the user's chosen candidate and a run's scores ---------------------------------


def test_the_chosen_candidate_is_kept_until_unmarked_or_deleted(project: Project) -> None:
    first = project.add_candidate("Name the capital.")
    second = project.add_candidate("Which city is the capital?")
    project.choose_candidate(first.id)
    assert project.chosen_candidate() == first
    project.update_settings(instruction="Changing settings keeps the mark.")
    assert project.chosen_candidate() == first
    project.choose_candidate(second.id)
    assert project.chosen_candidate() == second
    project.choose_candidate(None)
    assert project.chosen_candidate() is None
    project.choose_candidate(second.id)
    delete(project, "candidate", second.id)
    assert project.chosen_candidate() is None


def test_split_scores_cover_a_runs_candidates_per_split(project: Project) -> None:
    ids = with_splits(project)
    run = project.add_run("ape")
    scored = project.add_candidate("Name the capital.", run_id=run.id)
    unscored = project.add_candidate("Say the city.", run_id=run.id)
    elsewhere = project.add_candidate("Name the capital.")
    project.update_run(run.id, task_model_id="m1")
    key = project.run(run.id).scoring
    for example_id, score in zip(ids["dev"], (1.0, 0.0, 1.0)):
        project.save_evaluation(evaluation(scored.id, example_id, score=score, scoring=key))
        # Scores made since under other settings or on another model are not the run's.
        project.save_evaluation(evaluation(scored.id, example_id, 0.0, scoring="later"))
        project.save_evaluation(evaluation(scored.id, example_id, 0.0, "m2", scoring=key))
    project.save_evaluation(evaluation(scored.id, ids["test"][0], score=1.0, scoring=key))
    project.save_evaluation(evaluation(elsewhere.id, ids["dev"][0], score=0.0, scoring=key))

    scores = project.split_scores(run.id)

    assert set(scores) == {scored.id}, "unscored and other runs' candidates are left out"
    assert unscored.id not in scores
    mean, count_, tokens = scores[scored.id]["dev"]
    assert (round(mean, 3), count_, tokens) == (0.667, 3, 12.0)
    assert scores[scored.id]["test"][:2] == (1.0, 1)
