"""A project: one SQLite file holding a task, its examples, runs, candidates and evaluations.

Each thread gets its own connection (sqlite3 connections must not cross threads); WAL mode
lets the GUI read while a worker writes. Every write that must not be seen half-done runs
in one transaction.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import sqlite_utils

from promptstudio.dataio import SPLITS, Row
from promptstudio.llm.chat import prompt_format_of
from promptstudio.llm.config import ModelConfig
from promptstudio.store.errors import ProjectError
from promptstudio.store.records import (
    Candidate,
    Evaluation,
    Example,
    ProjectSettings,
    Run,
    Scoring,
    fingerprint,
    now,
    settings_from_row,
    settings_to_row,
)
from promptstudio.store.schema import (
    NEWER,
    SchemaError,
    current_scoring,
    migrate,
    schema_problem,
)

KILL_AT_CALL = "PROMPTSTUDIO_KILL_AT_CALL"
"""For kill tests only: with this variable set to N, the process kills itself (SIGKILL) as
soon as its project holds N stored model calls, so that a kill lands at a chosen point of
a run, inside a batch, rather than at a time (`benchmarks/kill_campaign.py`)."""


@dataclass(frozen=True)
class ExampleBackup:
    """Examples and their evaluations exactly as stored, kept so an edit can be undone."""

    examples: tuple[dict, ...] = ()
    evaluations: tuple[dict, ...] = ()

    @property
    def ids(self) -> list[int]:
        return [row["id"] for row in self.examples]


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), timeout=30.0, check_same_thread=True)
    # A damaged byte inside a stored text shows as a replacement character instead of
    # making the whole project unreadable.
    conn.text_factory = lambda data: data.decode("utf-8", "replace")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class Project:
    """Access to one project file. Create with `Project.create`, open with `Project.open`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()

    # -- opening ----------------------------------------------------------------------

    @classmethod
    def open(cls, path: str | Path) -> Project:
        """Open a project file, after checking it without changing it (`file_problem`): a
        damaged file is refused with the reason, and left exactly as it was."""
        path = Path(path)
        if not path.exists():
            raise ProjectError(f"There is no project file at {path}.")
        problem = file_problem(path)
        if problem is not None:
            if problem.startswith(NEWER):
                raise SchemaError(f"{path} cannot be opened: {problem}.")
            raise ProjectError(f"{path} cannot be opened: {problem}.{DAMAGED_ADVICE}")
        if not _writable(path):
            raise ProjectError(
                f"{path} cannot be opened: it is read-only (its permissions or its disk "
                "allow no changes), and a project saves its work as it goes. PromptStudio "
                "has not changed the file. Make it writable, or copy it into a folder of "
                "yours and open the copy.")
        project = cls(path)
        try:
            migrate(project.conn)
        except sqlite3.DatabaseError as exc:
            project.close()
            raise ProjectError(
                f"{path} is not a PromptStudio project file ({exc})."
            ) from exc
        except ProjectError:
            project.close()
            raise
        return project

    @classmethod
    def create(cls, path: str | Path, settings: ProjectSettings) -> Project:
        path = Path(path)
        if path.exists():
            raise ProjectError(f"A project file already exists at {path}.")
        path.parent.mkdir(parents=True, exist_ok=True)
        project = cls(path)
        migrate(project.conn)
        stamp = now()
        with project.transaction():
            project.db["project"].insert(
                {"id": 1, **settings_to_row(settings), "created": stamp, "updated": stamp}
            )
        return project

    @property
    def conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path)
            self._local.conn = conn
        return conn

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite_utils.Database(self.conn)
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """All or nothing: commit on success, roll back on any exception."""
        conn = self.conn
        with conn:
            if not conn.in_transaction:  # else sqlite_utils commits each batch on its own
                conn.execute("BEGIN IMMEDIATE")
            yield conn

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            self._local.db = None

    def integrity_check(self) -> str:
        return self.conn.execute("PRAGMA integrity_check").fetchone()[0]

    # -- settings ---------------------------------------------------------------------

    @property
    def settings(self) -> ProjectSettings:
        return settings_from_row(self.db["project"].get(1))

    @property
    def name(self) -> str:
        return self.settings.name

    def update_settings(self, **changes: object) -> ProjectSettings:
        settings = replace(self.settings, **changes)
        settings.prompt_template.check()
        settings.output_parser.validate()
        with self.transaction():
            self.db["project"].update(1, {**settings_to_row(settings), "updated": now()})
        return settings

    # -- examples ---------------------------------------------------------------------

    def add_examples(self, rows: Sequence[Row], split: str | None = None,
                     source: str = "") -> list[int]:
        """Insert rows in one transaction; each takes `split`, or its own `row.split`."""
        records = []
        stamp = now()
        for row in rows:
            row_split = split or row.split
            if row_split not in SPLITS:
                raise ProjectError(
                    f"Row {row.input[:40]!r} has no valid split ({row_split!r}); "
                    f"use one of {', '.join(SPLITS)}."
                )
            records.append({
                "input": row.input, "output": row.output,
                "answers": json.dumps(list(row.answers or (row.output,)), ensure_ascii=False),
                "split": row_split, "source": source, "created": stamp,
            })
        with self.transaction():
            # Ids are never reused, even after the newest examples were deleted.
            start = self.conn.execute(
                "SELECT MAX((SELECT COALESCE(MAX(id), 0) FROM example), last_example_id) "
                "FROM project WHERE id = 1").fetchone()[0]
            ids = list(range(start + 1, start + 1 + len(records)))
            for record, example_id in zip(records, ids):
                record["id"] = example_id
            self.db["example"].insert_all(records, batch_size=500)
            self.conn.execute("UPDATE project SET last_example_id = ? WHERE id = 1",
                              (start + len(records),))
        return ids

    def examples(self, split: str | None = None, ids: Iterable[int] | None = None,
                 limit: int | None = None) -> list[Example]:
        sql = "SELECT id, input, output, answers, split FROM example"
        where, args = [], []
        if split is not None:
            where.append("split = ?")
            args.append(split)
        if ids is not None:
            id_list = list(ids)
            where.append(f"id IN ({', '.join('?' * len(id_list))})")
            args.extend(id_list)
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        found = [_example(row) for row in self.conn.execute(sql, args)]
        if ids is not None:
            by_id = {example.id: example for example in found}
            return [by_id[i] for i in id_list if i in by_id]
        return found

    def split_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SPLITS, 0)
        for split, count in self.conn.execute(
                "SELECT split, COUNT(*) FROM example GROUP BY split"):
            counts[split] = count
        return counts

    def example_ids(self, split: str | None = None) -> list[int]:
        """Every example's id in order, so a table can show any row without reading them all."""
        if split is None:
            cursor = self.conn.execute("SELECT id FROM example ORDER BY id")
        else:
            cursor = self.conn.execute("SELECT id FROM example WHERE split = ? ORDER BY id",
                                       (split,))
        return [row[0] for row in cursor]

    def update_example(self, example_id: int, *, input: str | None = None,
                       output: str | None = None, answers: Sequence[str] | None = None,
                       split: str | None = None) -> ExampleBackup:
        """Change one example and return what it was, for undo.

        A new output replaces the old one among the accepted answers unless `answers` is
        given. A changed input or answer list makes the example's scores stale, so its
        evaluations are removed (they are in the returned backup).
        """
        found = self.examples(ids=[example_id])
        if not found:
            raise ProjectError(f"There is no example {example_id} (it may have been deleted).")
        old = found[0]
        new_input = old.input if input is None else input.strip()
        new_output = old.output if output is None else output.strip()
        if not new_input:
            raise ProjectError("An example needs an input. Type one, or delete the example.")
        if not new_output:
            raise ProjectError("An example needs an expected output. Type one, or delete "
                               "the example.")
        if answers is None:
            rest = (a for a in old.answers if a != old.output)
            new_answers = tuple(dict.fromkeys([new_output, *rest]))
        else:
            new_answers = tuple(dict.fromkeys([new_output, *(a.strip() for a in answers
                                                             if a.strip())]))
        new_split = old.split if split is None else split
        if new_split not in SPLITS:
            raise ProjectError(f"Unknown split {new_split!r}: use one of {', '.join(SPLITS)}.")
        backup = self._backup_examples([example_id])
        with self.transaction():
            self.conn.execute(
                "UPDATE example SET input = ?, output = ?, answers = ?, split = ? WHERE id = ?",
                (new_input, new_output, json.dumps(list(new_answers), ensure_ascii=False),
                 new_split, example_id))
            if (new_input, new_answers) != (old.input, old.answers):
                self.conn.execute("DELETE FROM evaluation WHERE example_id = ?", (example_id,))
        return backup

    def delete_examples(self, ids: Iterable[int]) -> ExampleBackup:
        """Delete examples with their evaluations; the backup brings them back unchanged."""
        id_list = list(ids)
        backup = self._backup_examples(id_list)
        with self.transaction():
            self.conn.executemany("DELETE FROM example WHERE id = ?", [(i,) for i in id_list])
        return backup

    def restore_examples(self, backup: ExampleBackup) -> None:
        """Put examples back as they were, under their old ids, with their evaluations.

        Evaluations of candidates deleted since are left out.
        """
        with self.transaction():
            for row in backup.examples:
                self.conn.execute(
                    "INSERT INTO example (id, input, output, answers, split, source, created) "
                    "VALUES (:id, :input, :output, :answers, :split, :source, :created) "
                    "ON CONFLICT (id) DO UPDATE SET input = excluded.input, "
                    "output = excluded.output, answers = excluded.answers, "
                    "split = excluded.split, source = excluded.source, "
                    "created = excluded.created", row)
            for row in backup.evaluations:
                self.conn.execute(
                    "INSERT OR REPLACE INTO evaluation (candidate_id, example_id, model, "
                    "scoring, raw_output, answer, score, prompt_tokens, completion_tokens, "
                    "latency, created) SELECT :candidate_id, :example_id, :model, :scoring, "
                    ":raw_output, :answer, :score, :prompt_tokens, :completion_tokens, "
                    ":latency, :created "
                    "WHERE EXISTS (SELECT 1 FROM candidate WHERE id = :candidate_id)", row)

    def _backup_examples(self, ids: Sequence[int]) -> ExampleBackup:
        examples, evaluations = [], []
        for start in range(0, len(ids), 500):
            chunk = list(ids[start:start + 500])
            marks = ", ".join("?" * len(chunk))
            examples += self._rows(f"SELECT * FROM example WHERE id IN ({marks}) ORDER BY id",
                                   chunk)
            evaluations += self._rows(
                f"SELECT * FROM evaluation WHERE example_id IN ({marks}) ORDER BY id", chunk)
        return ExampleBackup(tuple(examples), tuple(evaluations))

    def _rows(self, sql: str, args: Sequence[object]) -> list[dict]:
        cursor = self.conn.execute(sql, args)
        columns = [d[0] for d in cursor.description]
        return [dict(zip(columns, values)) for values in cursor]

    def split_overlaps(self) -> dict[str, tuple[str, ...]]:
        """Inputs held in more than one split, with those splits in order: a prompt may
        then be scored on a row it learned from, or shown a test row as a demonstration."""
        found = {}
        for text, splits in self.conn.execute(
                "SELECT input, GROUP_CONCAT(DISTINCT split) FROM example GROUP BY input "
                "HAVING COUNT(DISTINCT split) > 1"):
            held = set(splits.split(","))
            found[text] = tuple(s for s in SPLITS if s in held)
        return found

    def example_splits(self) -> dict[int, str]:
        """Each example's split, by id (kept before a re-split, to undo it)."""
        return dict(self.conn.execute("SELECT id, split FROM example ORDER BY id"))

    def set_splits(self, splits: Mapping[int, str]) -> None:
        """Move examples to other splits, all in one transaction."""
        unknown = sorted(set(splits.values()) - set(SPLITS))
        if unknown:
            raise ProjectError(f"Unknown split {unknown[0]!r}: use one of {', '.join(SPLITS)}.")
        with self.transaction():
            self.conn.executemany("UPDATE example SET split = ? WHERE id = ?",
                                  [(split, i) for i, split in splits.items()])

    # -- candidates and evaluations ---------------------------------------------------

    def add_candidate(self, instruction: str, demo_ids: Sequence[int] = (), *,
                      run_id: int | None = None, parent_ids: Sequence[int] = (),
                      operation: str = "manual", step: int = 0, origin: str = "",
                      meta: dict | None = None) -> Candidate:
        """The candidate with this instruction and demos in this run, created if new."""
        demo_ids = tuple(int(i) for i in demo_ids)
        key = fingerprint(instruction, demo_ids, (meta or {}).get("template"),
                          (meta or {}).get("demo_format"))
        shown = self.examples(ids=demo_ids)
        if len(shown) < len(demo_ids):
            missing = sorted(set(demo_ids) - {e.id for e in shown})
            raise ProjectError(f"Example {missing[0]} no longer exists, so it cannot be "
                               "shown as a demonstration.")
        demos = json.dumps([[e.input, e.output] for e in shown], ensure_ascii=False)
        with self.transaction():
            # Looked up inside the write transaction, so two threads cannot both insert it.
            row = self.conn.execute(
                "SELECT id FROM candidate WHERE fingerprint = ? AND run_id IS ? "
                "ORDER BY id LIMIT 1", (key, run_id),
            ).fetchone()
            if row is not None:
                return self.candidate(row[0])
            cursor = self.conn.execute(
                "INSERT INTO candidate (run_id, instruction, demo_ids, demos, parent_ids, "
                "operation, step, origin, meta, fingerprint, created) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, instruction, json.dumps(list(demo_ids)), demos,
                 json.dumps([int(p) for p in parent_ids]), operation, step, origin,
                 json.dumps(meta or {}, ensure_ascii=False), key, now()),
            )
        return self.candidate(cursor.lastrowid)

    def showing(self, example_ids: Iterable[int]) -> list[Candidate]:
        """The candidates that show any of these examples as a demonstration."""
        id_list = [int(i) for i in example_ids]
        if not id_list:
            return []
        cursor = self.conn.execute(
            "SELECT DISTINCT c.* FROM candidate c, json_each(c.demo_ids) d "
            f"WHERE d.value IN ({', '.join('?' * len(id_list))}) ORDER BY c.id", id_list)
        columns = [d[0] for d in cursor.description]
        return [_candidate(dict(zip(columns, values))) for values in cursor]

    def candidate(self, candidate_id: int) -> Candidate:
        return _candidate(self.db["candidate"].get(candidate_id))

    def candidates(self, run_id: int | None = None) -> list[Candidate]:
        """A run's candidates in the order they were made, in one query (a long run has
        thousands)."""
        cursor = self.conn.execute(
            "SELECT * FROM candidate WHERE run_id IS ? ORDER BY id", (run_id,))
        columns = [d[0] for d in cursor.description]
        return [_candidate(dict(zip(columns, values))) for values in cursor]

    # -- what scores are computed under ------------------------------------------------

    def scoring(self, prompt_format: str | None = None) -> Scoring:
        """The scoring of the project's current settings: the one every view counts as
        current, and the one new evaluations are made under. With `prompt_format`, the
        same settings for a model asked in that format (a model the prompt may move to)."""
        return current_scoring(self.conn, prompt_format or prompt_format_of(
            self.settings.task_model))

    def register_scoring(self, scoring: Scoring) -> str:
        """Keep a scoring's settings, so that scores made under it can say what they were
        made under; returns its key."""
        with self.transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO scoring (key, settings, created) VALUES (?, ?, ?)",
                (scoring.key, json.dumps(scoring.to_dict(), ensure_ascii=False), now()))
        return scoring.key

    def scoring_named(self, key: str | None) -> Scoring | None:
        """The scoring with this key, if the project kept it."""
        row = self.conn.execute("SELECT settings FROM scoring WHERE key = ?",
                                (key,)).fetchone()
        return Scoring.from_dict(json.loads(row[0])) if row else None

    def save_evaluation(self, evaluation: Evaluation) -> None:
        """Store one finished evaluation; a repeat of the same key replaces the old row."""
        if not evaluation.scoring:
            raise ValueError("An evaluation is stored with the scoring it was made under.")
        with self.transaction():
            self.conn.execute(
                "INSERT OR REPLACE INTO evaluation (candidate_id, example_id, model, scoring, "
                "raw_output, answer, score, prompt_tokens, completion_tokens, latency, "
                "created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (evaluation.candidate_id, evaluation.example_id, evaluation.model,
                 evaluation.scoring, evaluation.raw_output, evaluation.answer, evaluation.score,
                 evaluation.prompt_tokens, evaluation.completion_tokens, evaluation.latency,
                 now()),
            )

    def evaluations(self, candidate_id: int, model: str | None = None,
                    example_ids: Iterable[int] | None = None, *, scoring: str | None = None
                    ) -> dict[int, Evaluation]:
        """This candidate's evaluations by example id, on one model and under one scoring
        where they are given (else the same example may come from several)."""
        sql = "SELECT * FROM evaluation WHERE candidate_id = ?"
        args: list[object] = [candidate_id]
        for column, value in (("model", model), ("scoring", scoring)):
            if value is not None:
                sql += f" AND {column} = ?"
                args.append(value)
        if example_ids is not None:
            id_list = list(example_ids)
            sql += f" AND example_id IN ({', '.join('?' * len(id_list))})"
            args.extend(id_list)
        cursor = self.conn.execute(sql, args)
        columns = [d[0] for d in cursor.description]
        found = {}
        for values in cursor:
            row = dict(zip(columns, values))
            found[row["example_id"]] = Evaluation(
                candidate_id=row["candidate_id"], example_id=row["example_id"],
                model=row["model"], raw_output=row["raw_output"], answer=row["answer"],
                score=row["score"], prompt_tokens=row["prompt_tokens"],
                completion_tokens=row["completion_tokens"], latency=row["latency"],
                scoring=row["scoring"],
            )
        return found

    def has_evaluations(self) -> bool:
        return self.conn.execute("SELECT 1 FROM evaluation LIMIT 1").fetchone() is not None

    def scored_under(self, candidate_id: int) -> dict[tuple[str, str], int]:
        """How many evaluations of this candidate each (model, scoring key) holds."""
        return {(model, scoring): count for model, scoring, count in self.conn.execute(
            "SELECT model, scoring, COUNT(*) FROM evaluation WHERE candidate_id = ? "
            "GROUP BY model, scoring", (candidate_id,))}

    def mean_score(self, candidate_id: int, split: str, model: str | None = None,
                   scoring: str | None = None) -> tuple[float | None, int]:
        """Mean score of a candidate over the evaluated examples of a split, and their
        count; on one model and under one scoring where they are given."""
        sql = ("SELECT AVG(e.score), COUNT(*) FROM evaluation e JOIN example x "
               "ON x.id = e.example_id WHERE e.candidate_id = ? AND x.split = ?")
        args: list[object] = [candidate_id, split]
        for column, value in (("model", model), ("scoring", scoring)):
            if value is not None:
                sql += f" AND e.{column} = ?"
                args.append(value)
        mean, count = self.conn.execute(sql, args).fetchone()
        return mean, count

    def best_candidate(self, split: str, scoring: str) -> Candidate | None:
        """The candidate with the highest mean score on `split` under `scoring`, on any one
        model (ties: most examples, oldest)."""
        row = self.conn.execute(
            "SELECT e.candidate_id FROM evaluation e JOIN example x ON x.id = e.example_id "
            "WHERE x.split = ? AND e.scoring = ? GROUP BY e.candidate_id, e.model "
            "ORDER BY AVG(e.score) DESC, COUNT(*) DESC, e.candidate_id ASC LIMIT 1",
            (split, scoring),
        ).fetchone()
        return self.candidate(row[0]) if row else None

    def split_scores(self, run_id: int) -> dict[int, dict[str, tuple[float, int, float]]]:
        """Every scored candidate of a run, by id: per split, its mean score, how many
        examples were scored and the mean prompt tokens of a call; on the run's model and
        under the run's scoring only, so that scores made since under other settings or on
        another model are not mixed in. One query, so a run's results load at once."""
        run = self.run(run_id)
        sql = ("SELECT e.candidate_id, x.split, AVG(e.score), COUNT(*), AVG(e.prompt_tokens) "
               "FROM evaluation e JOIN example x ON x.id = e.example_id "
               "JOIN candidate c ON c.id = e.candidate_id WHERE c.run_id = ?")
        args: list[object] = [run_id]
        for column, value in (("model", run.task_model_id), ("scoring", run.scoring)):
            if value is not None:
                sql += f" AND e.{column} = ?"
                args.append(value)
        found: dict[int, dict[str, tuple[float, int, float]]] = {}
        for candidate_id, split, mean, count, tokens in self.conn.execute(
                sql + " GROUP BY e.candidate_id, x.split", args):
            found.setdefault(candidate_id, {})[split] = (mean, count, tokens)
        return found

    def chosen_candidate(self) -> Candidate | None:
        """The candidate the user marked as best, if any: exports prefer it to the scores'
        pick."""
        row = self.conn.execute("SELECT chosen_candidate_id FROM project WHERE id = 1").fetchone()
        return self.candidate(row[0]) if row and row[0] is not None else None

    def choose_candidate(self, candidate_id: int | None) -> None:
        """Mark a candidate as the user's best (None takes the mark away)."""
        with self.transaction():
            self.conn.execute("UPDATE project SET chosen_candidate_id = ? WHERE id = 1",
                              (candidate_id,))

    # -- runs -------------------------------------------------------------------------

    def add_run(self, method: str, *, params: dict | None = None, seed: int = 0,
                preset: str = "", budget: dict | None = None) -> Run:
        """A pending run with the project's models and scoring as they are now: a run keeps
        them, whatever changes in the project later."""
        settings = self.settings
        scoring = self.register_scoring(self.scoring())
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO run (method, preset, params, seed, budget, status, task_model, "
                "optimizer_model, scoring, created) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (method, preset, json.dumps(params or {}), seed, json.dumps(budget or {}),
                 "pending", json.dumps(settings.task_model.to_dict()),
                 json.dumps(settings.optimizer_model.to_dict()), scoring, now()),
            )
        return self.run(cursor.lastrowid)

    def run(self, run_id: int) -> Run:
        try:
            row = self.db["run"].get(run_id)
        except sqlite_utils.db.NotFoundError as exc:
            raise ProjectError(f"There is no run {run_id} in project {self.path.stem}.") from exc
        return Run(
            id=row["id"], method=row["method"], status=row["status"], seed=row["seed"],
            preset=row["preset"], params=json.loads(row["params"]),
            budget=json.loads(row["budget"]), best_candidate_id=row["best_candidate_id"],
            llm_calls=row["llm_calls"], tokens=row["tokens"], seconds=row["seconds"],
            rejected_candidates=row["rejected_candidates"], error=row["error"],
            created=row["created"], choice=json.loads(row["choice"]) if row["choice"] else None,
            task_model=ModelConfig.from_dict(json.loads(row["task_model"])),
            optimizer_model=ModelConfig.from_dict(json.loads(row["optimizer_model"])),
            scoring=row["scoring"], task_model_id=row["task_model_id"],
        )

    def runs(self) -> list[Run]:
        return [self.run(r[0]) for r in self.conn.execute("SELECT id FROM run ORDER BY id")]

    def update_run(self, run_id: int, **changes: object) -> None:
        for key in ("params", "budget", "choice"):
            if key in changes and changes[key] is not None:
                changes[key] = json.dumps(changes[key])
        with self.transaction():
            try:
                self.db["run"].update(run_id, changes)
            except sqlite_utils.db.NotFoundError as exc:
                raise ProjectError(
                    f"There is no run {run_id} in project {self.path.stem}."
                ) from exc

    # -- meta-prompt overrides (see promptstudio.optimize.meta_prompts) ---------------

    def meta_prompt(self, name: str) -> str | None:
        row = self.conn.execute("SELECT text FROM meta_prompt WHERE name = ?",
                                (name,)).fetchone()
        return row[0] if row else None

    def set_meta_prompt(self, name: str, text: str | None) -> None:
        """Keep this project's own version of a meta-prompt; None goes back to the default."""
        with self.transaction():
            if text is None:
                self.conn.execute("DELETE FROM meta_prompt WHERE name = ?", (name,))
            else:
                self.conn.execute(
                    "INSERT OR REPLACE INTO meta_prompt (name, text, updated) VALUES (?,?,?)",
                    (name, text, now()))

    # -- the LLM call cache (see promptstudio.llm.cache) ------------------------------

    def cached_call(self, key: str) -> dict | None:
        row = self.conn.execute("SELECT response FROM llm_call WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def store_call(self, key: str, record: dict) -> None:
        self._store_call(key, record)
        kill_at = os.environ.get(KILL_AT_CALL)
        if kill_at and self.cache_size() >= int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)

    def _store_call(self, key: str, record: dict) -> None:
        with self.transaction():
            self.conn.execute(
                "INSERT OR IGNORE INTO llm_call (key, op, backend, model, params, prompt, "
                "response, prompt_tokens, completion_tokens, seconds, created) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (key, record["op"], record["backend"], record["model"],
                 json.dumps(record["params"], ensure_ascii=False), record["prompt"],
                 json.dumps(record["response"], ensure_ascii=False),
                 record.get("prompt_tokens", 0), record.get("completion_tokens", 0),
                 record.get("seconds", 0.0), now()),
            )

    def cache_size(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM llm_call").fetchone()[0]


DAMAGED_ADVICE = (" PromptStudio has not changed the file. If you have a copy of it (a backup, "
                  "or the file you moved it from), put the copy in its place.")


def _writable(path: Path) -> bool:
    """Whether the file takes writes: opened for writing (nothing is written), which its
    permissions, an immutable flag or a read-only disk refuse."""
    try:
        with path.open("r+b"):
            return True
    except OSError:
        return False


def _checked_tables(conn: sqlite3.Connection) -> list[str]:
    """The tables whose indexes are checked against their rows on opening (`quick_check`
    does not): all but the model-call cache, which is large, and whose damaged entry is
    only asked again."""
    return [name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "AND name != 'llm_call'")]


def file_problem(path: Path) -> str | None:
    """What makes a file unusable as a project, in words, or None when it looks sound:
    it is read through a read-only connection, its pages checked (`quick_check`, and
    `integrity_check` of each table's indexes but the call cache's) and its
    tables compared with what its schema version promises (`schema.schema_problem`)."""
    if path.is_dir():
        return "it is a folder, not a file"
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"it cannot be read ({exc})"
    try:
        checked = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if checked != "ok":
            return f"it is damaged (SQLite says: {checked})"
        for table in _checked_tables(conn):
            checked = conn.execute(f"PRAGMA integrity_check('{table}')").fetchone()[0]
            if checked != "ok":
                return f"it is damaged (SQLite says: {checked})"
        return schema_problem(conn)
    except sqlite3.DatabaseError as exc:
        return f"it is not a PromptStudio project file, or it is damaged ({exc})"
    except UnicodeDecodeError:
        return "it is damaged: some of its text is not valid UTF-8"
    finally:
        conn.close()


def _candidate(row: dict) -> Candidate:
    return Candidate(
        id=row["id"], instruction=row["instruction"],
        demo_ids=tuple(json.loads(row["demo_ids"])), run_id=row["run_id"],
        parent_ids=tuple(json.loads(row["parent_ids"])), operation=row["operation"],
        step=row["step"], origin=row["origin"], meta=json.loads(row["meta"]),
        demos=tuple((text, output) for text, output in json.loads(row["demos"] or "[]")),
    )


def _example(row: tuple) -> Example:
    return Example(id=row[0], input=row[1], output=row[2],
                   answers=tuple(json.loads(row[3])), split=row[4])
