"""Editing a project's rows: change, delete and bring back examples, re-split, import
rows already read, and the projects list (no model, no window)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promptstudio import dataio, workflows
from promptstudio.dataio import Row
from promptstudio.store import Evaluation, Project, ProjectError, ProjectSettings
from promptstudio.store.workspace import Workspace


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    project = Project.create(tmp_path / "capitals.sqlite", ProjectSettings(name="Capitals"))
    project.add_examples([
        Row("France", "Paris", ("Paris",), "train"),
        Row("Japan", "Tokyo", ("Tokyo", "東京"), "dev"),
        Row("Peru", "Lima", ("Lima",), "dev"),
        Row("Chad", "N'Djamena", ("N'Djamena",), "test"),
    ])
    yield project
    project.close()


def score(project: Project, example_id: int, value: float = 1.0) -> int:
    candidate = project.add_candidate(f"Name the capital ({example_id}).")
    project.save_evaluation(Evaluation(candidate.id, example_id, "m", "x", "x", value,
                                       scoring=project.scoring().key))
    return candidate.id


def test_example_ids_follow_the_split_filter(project):
    assert project.example_ids() == [1, 2, 3, 4]
    assert project.example_ids("dev") == [2, 3]
    assert project.example_ids("train") == [1]


def test_a_new_output_replaces_the_old_one_among_the_answers(project):
    project.update_example(2, output="Tōkyō")
    [japan] = project.examples(ids=[2])
    assert japan.output == "Tōkyō"
    assert japan.answers == ("Tōkyō", "東京")


def test_editing_input_drops_stale_scores_and_undo_brings_them_back(project):
    candidate_id = score(project, 2)
    backup = project.update_example(2, input="  Japan (country)  ")
    assert project.examples(ids=[2])[0].input == "Japan (country)"
    assert project.evaluations(candidate_id) == {}
    project.restore_examples(backup)
    assert project.examples(ids=[2])[0].input == "Japan"
    assert project.evaluations(candidate_id)[2].score == 1.0


def test_moving_a_row_to_another_split_keeps_its_scores(project):
    candidate_id = score(project, 2)
    project.update_example(2, split="test")
    assert project.examples(ids=[2])[0].split == "test"
    assert 2 in project.evaluations(candidate_id)


@pytest.mark.parametrize("changes, words", [
    ({"input": "  "}, "needs an input"),
    ({"output": ""}, "needs an expected output"),
    ({"split": "holdout"}, "Unknown split"),
])
def test_an_edit_that_would_break_the_row_is_refused(project, changes, words):
    with pytest.raises(ProjectError, match=words):
        project.update_example(3, **changes)
    assert project.examples(ids=[3])[0].input == "Peru"


def test_editing_a_deleted_row_says_so(project):
    project.delete_examples([3])
    with pytest.raises(ProjectError, match="no example 3"):
        project.update_example(3, output="Lima")


def test_deleted_rows_come_back_with_their_ids_and_scores(project):
    candidate_id = score(project, 3, 0.5)
    before = project.examples()
    backup = project.delete_examples([1, 3])
    assert backup.ids == [1, 3]
    assert project.example_ids() == [2, 4]
    assert project.evaluations(candidate_id) == {}
    project.restore_examples(backup)
    assert project.examples() == before
    assert project.evaluations(candidate_id)[3].score == 0.5


def test_scores_of_a_candidate_deleted_meanwhile_are_not_restored(project):
    candidate_id = score(project, 3)
    backup = project.delete_examples([3])
    with project.transaction() as conn:
        conn.execute("DELETE FROM candidate WHERE id = ?", (candidate_id,))
    project.restore_examples(backup)
    assert project.example_ids() == [1, 2, 3, 4]


def test_many_rows_delete_and_restore_in_chunks(project):
    before = project.examples()
    ids = project.add_examples([Row(f"q{i}", "a", ("a",), "train") for i in range(1_200)])
    added = project.examples(ids=ids)
    backup = project.delete_examples(ids)
    assert len(backup.examples) == 1_200
    assert project.examples() == before
    project.restore_examples(backup)
    assert project.examples() == before + added


def test_resplit_is_seeded_and_undone_by_setting_the_old_splits(project):
    old = project.example_splits()
    counts = workflows.resplit(project, {"train": 2, "dev": 1, "test": 1}, seed=3)
    assert counts == {"train": 2, "dev": 1, "test": 1}
    first = project.example_splits()
    project.set_splits(old)
    assert project.example_splits() == old
    workflows.resplit(project, {"train": 2, "dev": 1, "test": 1}, seed=3)
    assert project.example_splits() == first


@pytest.mark.parametrize("shares", [{"train": 0, "dev": 0}, {"train": -1, "dev": 2},
                                    {"holdout": 1}])
def test_resplit_refuses_shares_that_make_no_sense(project, shares):
    with pytest.raises(ProjectError):
        workflows.resplit(project, shares)


def test_set_splits_refuses_unknown_names(project):
    with pytest.raises(ProjectError, match="Unknown split"):
        project.set_splits({1: "holdout"})


# -- rows already read, with a column mapping ----------------------------------------------


def reviews() -> dataio.ImportResult:
    table = dataio.parse_pasted("review\tlabel\nGreat kettle\tpositive\nBroke at once\t"
                                "negative\nGreat kettle\tpositive\nLovely\tpositive\n")
    return dataio.to_rows(table, "review", "label")


def test_plan_import_reports_without_writing():
    report = workflows.plan_import(reviews(), "pasted text", split="dev")
    assert report.added == {"train": 0, "dev": 3, "test": 0}
    assert "line 4 repeats line 2" in report.describe()


def test_a_project_from_pasted_rows(tmp_path):
    workspace = Workspace(tmp_path)
    project, report = workflows.create_project_from_rows(
        workspace, "Reviews", reviews(), "pasted text", split="train",
        metric="label", labels=("positive", "negative"))
    try:
        assert project.split_counts() == {"train": 3, "dev": 0, "test": 0}
        assert project.settings.labels == ("positive", "negative")
        assert report.describe().startswith("Imported 3 rows (3 train)")
    finally:
        project.close()
    with pytest.raises(ProjectError, match="already exists"):
        workflows.create_project_from_rows(workspace, "Reviews", reviews(), "pasted text")


def test_a_project_needs_rows_and_usable_labels(tmp_path):
    workspace = Workspace(tmp_path)
    empty = dataio.ImportResult([], [], 2)
    with pytest.raises(ProjectError, match="no rows"):
        workflows.create_project_from_rows(workspace, "Empty", empty, "pasted text")
    with pytest.raises(ProjectError, match="two labels"):
        workflows.create_project_from_rows(workspace, "L", reviews(), "x", metric="label")
    assert workspace.list() == []


def test_added_rows_return_their_ids(project):
    report, ids = workflows.add_rows(project, reviews(), "pasted text", split="test")
    assert ids == [5, 6, 7]
    assert report.added["test"] == 3
    assert [e.input for e in project.examples(ids=ids)] == ["Great kettle", "Broke at once",
                                                             "Lovely"]


# -- the projects list --------------------------------------------------------------------


def test_overviews_give_the_best_dev_score_else_test(tmp_path):
    workspace = Workspace(tmp_path)
    for name in ("Alpha", "Beta"):
        project, _ = workflows.create_project_from_rows(workspace, name, reviews(), "x",
                                                        split="test")
        project.close()
    beta = workspace.open("Beta")
    candidate = beta.add_candidate("Say the label.")
    for example_id, value in ((1, 1.0), (2, 0.0)):
        beta.save_evaluation(Evaluation(candidate.id, example_id, "m", "", "", value,
                                        scoring=beta.scoring().key))
    beta.close()
    overviews = {o.name: o for o in workflows.project_overviews(workspace)[0]}
    assert overviews["Alpha"].best_score is None
    assert overviews["Beta"].examples == 3
    assert (overviews["Beta"].best_score, overviews["Beta"].best_split) == (0.5, "test")


def test_free_project_name_counts_up(tmp_path):
    workspace = Workspace(tmp_path)
    assert workflows.free_project_name(workspace, "Plural nouns") == "Plural nouns"
    for _ in range(2):
        name = workflows.free_project_name(workspace, "Plural nouns")
        workflows.create_project_from_rows(workspace, name, reviews(), "x")[0].close()
    assert workflows.free_project_name(workspace, "Plural nouns") == "Plural nouns 3"


def test_a_deleted_examples_id_is_never_given_to_a_new_one(workspace):
    from promptstudio.dataio import Row
    from promptstudio.store.records import ProjectSettings

    project = workspace.create(ProjectSettings(name="ids"))
    first = project.add_examples([Row(w, w[0], (w[0],), "train") for w in ("ant", "bee")])
    demo = project.add_candidate("Answer.", [first[-1]])
    project.delete_examples([first[-1]])
    (new,) = project.add_examples([Row("cat", "c", ("c",), "train")])
    assert new > first[-1]
    assert project.examples(ids=demo.demo_ids) == []
    project.close()
    reopened = workspace.open("ids")
    (after,) = reopened.add_examples([Row("dog", "d", ("d",), "train")])
    assert after == new + 1
