"""The project database's schema and its migrations.

`PRAGMA user_version` holds the schema version. Each migration is a function that moves a
database from version i to i + 1, run inside one transaction, so a crash mid-way leaves the
file at the old version. `docs/schema.md` describes the tables for people who open a project
in sqlite3 or Datasette.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from collections.abc import Callable

from promptstudio.llm.chat import TEXT
from promptstudio.store.errors import SchemaError
from promptstudio.store.records import Scoring, now, settings_from_row

Migration = Callable[[sqlite3.Connection], None]


NEWER = "it was saved by a newer PromptStudio"


def _execute_all(conn: sqlite3.Connection, script: str) -> None:
    """Run `;`-separated DDL inside the caller's transaction (executescript would commit)."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _create_tables(conn: sqlite3.Connection) -> None:
    _execute_all(
        conn,
        """
        CREATE TABLE project (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            name TEXT NOT NULL,
            task_description TEXT NOT NULL DEFAULT '',
            template TEXT NOT NULL,
            demo_format TEXT NOT NULL,
            instruction TEXT NOT NULL DEFAULT '',
            output_parser TEXT NOT NULL DEFAULT '{}',
            metric TEXT NOT NULL DEFAULT 'normalized_exact',
            metric_options TEXT NOT NULL DEFAULT '{}',
            labels TEXT NOT NULL DEFAULT '[]',
            task_model TEXT NOT NULL DEFAULT '{}',
            optimizer_model TEXT NOT NULL DEFAULT '{}',
            created TEXT NOT NULL,
            updated TEXT NOT NULL
        );
        CREATE TABLE example (
            id INTEGER PRIMARY KEY,
            input TEXT NOT NULL,
            output TEXT NOT NULL,
            answers TEXT NOT NULL,
            split TEXT NOT NULL CHECK (split IN ('train', 'dev', 'test')),
            source TEXT NOT NULL DEFAULT '',
            created TEXT NOT NULL
        );
        CREATE INDEX example_split ON example (split);
        CREATE TABLE run (
            id INTEGER PRIMARY KEY,
            method TEXT NOT NULL,
            preset TEXT NOT NULL DEFAULT '',
            params TEXT NOT NULL DEFAULT '{}',
            seed INTEGER NOT NULL DEFAULT 0,
            budget TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN
                ('pending', 'running', 'paused', 'finished', 'cancelled', 'failed')),
            task_model TEXT NOT NULL DEFAULT '{}',
            optimizer_model TEXT NOT NULL DEFAULT '{}',
            best_candidate_id INTEGER REFERENCES candidate (id) ON DELETE SET NULL,
            started TEXT,
            finished TEXT,
            seconds REAL NOT NULL DEFAULT 0,
            llm_calls INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            rejected_candidates INTEGER NOT NULL DEFAULT 0,
            error TEXT,
            created TEXT NOT NULL
        );
        CREATE TABLE candidate (
            id INTEGER PRIMARY KEY,
            run_id INTEGER REFERENCES run (id) ON DELETE CASCADE,
            instruction TEXT NOT NULL,
            demo_ids TEXT NOT NULL DEFAULT '[]',
            parent_ids TEXT NOT NULL DEFAULT '[]',
            operation TEXT NOT NULL DEFAULT 'manual',
            step INTEGER NOT NULL DEFAULT 0,
            origin TEXT NOT NULL DEFAULT '',
            meta TEXT NOT NULL DEFAULT '{}',
            fingerprint TEXT NOT NULL,
            created TEXT NOT NULL
        );
        CREATE INDEX candidate_run ON candidate (run_id, fingerprint);
        CREATE TABLE evaluation (
            id INTEGER PRIMARY KEY,
            candidate_id INTEGER NOT NULL REFERENCES candidate (id) ON DELETE CASCADE,
            example_id INTEGER NOT NULL REFERENCES example (id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            raw_output TEXT NOT NULL,
            answer TEXT NOT NULL,
            score REAL NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            latency REAL NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            UNIQUE (candidate_id, example_id, model)
        );
        CREATE INDEX evaluation_example ON evaluation (example_id);
        CREATE TABLE llm_call (
            key TEXT PRIMARY KEY,
            op TEXT NOT NULL CHECK (op IN ('generate', 'score')),
            backend TEXT NOT NULL,
            model TEXT NOT NULL,
            params TEXT NOT NULL,
            prompt TEXT NOT NULL,
            response TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            seconds REAL NOT NULL DEFAULT 0,
            created TEXT NOT NULL
        );
        """
    )


def _add_meta_prompts(conn: sqlite3.Connection) -> None:
    """Version 2: a project's own versions of the optimizers' meta-prompts."""
    conn.execute(
        "CREATE TABLE meta_prompt (name TEXT PRIMARY KEY, text TEXT NOT NULL, "
        "updated TEXT NOT NULL)"
    )


def _add_chosen_candidate(conn: sqlite3.Connection) -> None:
    """Version 3: the candidate the user marked as best, which exports prefer."""
    conn.execute(
        "ALTER TABLE project ADD COLUMN chosen_candidate_id INTEGER "
        "REFERENCES candidate (id) ON DELETE SET NULL"
    )


def _add_last_example_id(conn: sqlite3.Connection) -> None:
    """Version 4: the largest example id ever given, so that a deleted example's id is
    never given to a new one (candidates keep their demonstrations by id)."""
    conn.execute("ALTER TABLE project ADD COLUMN last_example_id INTEGER NOT NULL DEFAULT 0")
    conn.execute("UPDATE project SET last_example_id = (SELECT COALESCE(MAX(id), 0) "
                 "FROM example)")


def _add_run_choice(conn: sqlite3.Connection) -> None:
    """Version 5: how a finished run chose its best prompt, and why, as JSON
    (`promptstudio.optimize.selection.Choice`)."""
    conn.execute("ALTER TABLE run ADD COLUMN choice TEXT")


def current_scoring(conn: sqlite3.Connection, prompt_format: str = TEXT) -> Scoring:
    """The scoring of the project's settings as stored now (`Project.scoring`), for a task
    model with this prompt format."""
    cursor = conn.execute("SELECT * FROM project WHERE id = 1")
    columns = [d[0] for d in cursor.description]
    settings = settings_from_row(dict(zip(columns, cursor.fetchone())))
    return Scoring.of(settings, reference_answers(conn), prompt_format)


def reference_answers(conn: sqlite3.Connection) -> list[str]:
    """The reference answers the answer length is sized on: the training rows', else all."""
    for where in ("WHERE split = 'train'", ""):
        rows = conn.execute(f"SELECT output, answers FROM example {where}").fetchall()
        if rows:
            return [a for output, answers in rows for a in (output, *json.loads(answers))]
    return []


def _add_scoring(conn: sqlite3.Connection) -> None:
    """Version 6: every evaluation records the scoring it was made under (`Scoring`), and
    every run the scoring it scores under and its task model's identity. Evaluations were
    unique per candidate, example and model, so changing the metric or the template left
    old scores counted as current. What earlier files stored was made under settings no
    longer known; the project's current settings are the best guess, and the log says so.
    """
    conn.execute("CREATE TABLE scoring (key TEXT PRIMARY KEY, settings TEXT NOT NULL, "
                 "created TEXT NOT NULL)")
    _execute_all(conn, """
        CREATE TABLE evaluation_new (
            id INTEGER PRIMARY KEY,
            candidate_id INTEGER NOT NULL REFERENCES candidate (id) ON DELETE CASCADE,
            example_id INTEGER NOT NULL REFERENCES example (id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            scoring TEXT NOT NULL,
            raw_output TEXT NOT NULL,
            answer TEXT NOT NULL,
            score REAL NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            latency REAL NOT NULL DEFAULT 0,
            created TEXT NOT NULL,
            UNIQUE (candidate_id, example_id, model, scoring)
        )""")
    scoring = current_scoring(conn) if conn.execute(
        "SELECT 1 FROM project WHERE id = 1").fetchone() else None
    key = scoring.key if scoring else ""
    conn.execute(
        "INSERT INTO evaluation_new (id, candidate_id, example_id, model, scoring, raw_output, "
        "answer, score, prompt_tokens, completion_tokens, latency, created) "
        "SELECT id, candidate_id, example_id, model, ?, raw_output, answer, score, "
        "prompt_tokens, completion_tokens, latency, created FROM evaluation", (key,))
    _execute_all(conn, """
        DROP TABLE evaluation;
        ALTER TABLE evaluation_new RENAME TO evaluation;
        CREATE INDEX evaluation_example ON evaluation (example_id);
        ALTER TABLE run ADD COLUMN scoring TEXT;
        ALTER TABLE run ADD COLUMN task_model_id TEXT""")
    if scoring is None:
        return
    conn.execute("INSERT INTO scoring (key, settings, created) VALUES (?, ?, ?)",
                 (key, json.dumps(scoring.to_dict(), ensure_ascii=False), now()))
    conn.execute("UPDATE run SET scoring = ?", (key,))
    for run_id, choice in conn.execute("SELECT id, choice FROM run").fetchall():
        model = (json.loads(choice) or {}).get("model") if choice else None
        if not model:
            counts = Counter(dict(conn.execute(
                "SELECT e.model, COUNT(*) FROM evaluation e JOIN candidate c "
                "ON c.id = e.candidate_id WHERE c.run_id = ? GROUP BY e.model", (run_id,))))
            model = max(counts, key=lambda m: (counts[m], m)) if counts else None
        conn.execute("UPDATE run SET task_model_id = ? WHERE id = ?", (model, run_id))
    stored = conn.execute("SELECT COUNT(*) FROM evaluation").fetchone()[0]
    if stored:
        logging.getLogger(__name__).info(
            "Recorded the scoring settings of %d stored scores as the project's current "
            "ones (template, metric, labels, answer reading): the file did not keep the "
            "settings they were made under, and these are the best guess.", stored)


def _add_candidate_demos(conn: sqlite3.Connection) -> None:
    """Version 7: a candidate keeps the text of its demonstrations (`candidate.demos`), so
    that deleting or editing a row it shows leaves the prompt what was scored. Earlier
    files get the rows' text as it is now; a demonstration deleted before stays missing,
    and the log says how many prompts lost one."""
    conn.execute("ALTER TABLE candidate ADD COLUMN demos TEXT")
    rows = {i: (text, output) for i, text, output in conn.execute(
        "SELECT id, input, output FROM example")}
    incomplete = 0
    for candidate_id, demo_ids in conn.execute(
            "SELECT id, demo_ids FROM candidate WHERE demo_ids != '[]'").fetchall():
        ids = json.loads(demo_ids)
        demos = [list(rows[i]) for i in ids if i in rows]
        incomplete += len(demos) < len(ids)
        conn.execute("UPDATE candidate SET demos = ? WHERE id = ?",
                     (json.dumps(demos, ensure_ascii=False), candidate_id))
    if incomplete:
        logging.getLogger(__name__).info(
            "%d prompts show a demonstration whose row was deleted before this version kept "
            "demonstrations with their prompts; they are shown without it.", incomplete)


def _add_chat_settings(conn: sqlite3.Connection) -> None:
    """Version 8: where a chat model gets the instruction and the demonstrations
    (`ProjectSettings.instruction_place`, `demo_place`), as JSON; earlier files get the
    defaults, which change nothing for the text models they were made with."""
    conn.execute("ALTER TABLE project ADD COLUMN chat TEXT NOT NULL DEFAULT '{}'")


MIGRATIONS: list[Migration] = [_create_tables, _add_meta_prompts, _add_chosen_candidate,
                               _add_last_example_id, _add_run_choice, _add_scoring,
                               _add_candidate_demos, _add_chat_settings]


def expected_columns(version: int) -> dict[str, set[str]]:
    """The tables and their columns a file of this schema version has, as the migrations
    up to it make them (worked out once per version on an empty database in memory)."""
    if version not in _EXPECTED:
        conn = sqlite3.connect(":memory:")
        try:
            migrate(conn, MIGRATIONS[:version])
            _EXPECTED[version] = _columns(conn)
        finally:
            conn.close()
    return _EXPECTED[version]


_EXPECTED: dict[int, dict[str, set[str]]] = {}


def _columns(conn: sqlite3.Connection) -> dict[str, set[str]]:
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {table: {row[1] for row in conn.execute(f"PRAGMA table_info('{table}')")}
            for table in tables}


_SHAPES = [
    *[("project", c, "text") for c in ("name", "template", "demo_format", "instruction",
                                       "metric")],
    *[("project", c, "object") for c in ("output_parser", "metric_options", "task_model",
                                         "optimizer_model", "chat")],
    ("project", "labels", "array"),
    *[("example", c, "text") for c in ("input", "output", "split")],
    ("example", "answers", "array"),
    *[("run", c, "object") for c in ("params", "budget", "task_model", "optimizer_model",
                                     "choice")],
    *[("run", c, "number") for c in ("seed", "seconds", "llm_calls", "tokens")],
    ("candidate", "instruction", "text"),
    *[("candidate", c, "array") for c in ("demo_ids", "parent_ids", "demos")],
    ("candidate", "meta", "object"),
    *[("evaluation", c, "text") for c in ("model", "raw_output", "answer")],
    ("evaluation", "score", "number"),
    ("scoring", "settings", "object"),
]
"""What each value the code reads must be: text, a number, or a JSON object or array.
The cache of model calls (`llm_call`) is left out: it is large, and a damaged entry is
only asked again."""
_NULLABLE = {("run", "choice"), ("candidate", "demos")}


def schema_problem(conn: sqlite3.Connection) -> str | None:
    """What is wrong with a project file's structure, in words, or None when it has every
    table and column its schema version promises. Reads only."""
    version = schema_version(conn)
    if version > len(MIGRATIONS):
        return (f"{NEWER} (schema {version}; this version knows up to "
                f"{len(MIGRATIONS)}). Update PromptStudio to open it")
    if version < 1:
        return "it is a database but holds no PromptStudio project"
    found = _columns(conn)
    expected = expected_columns(version)
    for table, columns in expected.items():
        if table not in found:
            return f"its table '{table}' is missing"
        missing = sorted(columns - found[table])
        if missing:
            return f"its table '{table}' has lost the column '{missing[0]}'"
    for table, columns in expected_columns(len(MIGRATIONS)).items():
        early = sorted((columns - expected.get(table, set())) & found.get(table, set()))
        if early:
            return (f"its schema version ({version}) is older than its tables: "
                    f"'{table}.{early[0]}' belongs to a later version")
    for table, column, kind in _SHAPES:
        if column not in found.get(table, ()):
            continue
        test = (f"typeof({column}) = 'text'" if kind == "text" else
                f"typeof({column}) IN ('integer', 'real')" if kind == "number" else
                f"json_valid({column}) AND json_type({column}) = '{kind}'")
        null = f"{column} IS NULL OR " if (table, column) in _NULLABLE else ""
        bad = conn.execute(f"SELECT rowid FROM '{table}' WHERE NOT ({null}{test}) "
                           "LIMIT 1").fetchone()
        if bad is not None:
            return (f"row {bad[0]} of its table '{table}' holds a damaged value in "
                    f"'{column}'")
    if conn.execute("SELECT COUNT(*) FROM project").fetchone()[0] != 1:
        return "it is a database but holds no PromptStudio project (no project settings)"
    if conn.execute("SELECT COUNT(*) FROM project WHERE id = 1").fetchone()[0] != 1:
        return "its project settings are damaged (their row has lost its number)"
    broken = conn.execute("PRAGMA foreign_key_check").fetchone()
    if broken is not None:
        return (f"row {broken[1]} of its table '{broken[0]}' points to a row of "
                f"'{broken[2]}' that is not there")
    return None


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, migrations: list[Migration] | None = None) -> int:
    """Bring the database to the newest schema; returns the version reached."""
    migrations = MIGRATIONS if migrations is None else migrations
    version = schema_version(conn)
    if version > len(migrations):
        raise SchemaError(
            f"This project was saved by a newer PromptStudio (schema {version}; this version "
            f"knows up to {len(migrations)}). Update PromptStudio to open it."
        )
    for target, step in enumerate(migrations[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return schema_version(conn)
