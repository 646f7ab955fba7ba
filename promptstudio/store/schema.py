"""The project database's schema and its migrations.

`PRAGMA user_version` holds the schema version. Each migration is a function that moves a
database from version i to i + 1, run inside one transaction, so a crash mid-way leaves the
file at the old version. `docs/schema.md` describes the tables for people who open a project
in sqlite3 or Datasette.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

Migration = Callable[[sqlite3.Connection], None]


class SchemaError(RuntimeError):
    """The file is not a PromptStudio project this version can open."""


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


MIGRATIONS: list[Migration] = [_create_tables, _add_meta_prompts, _add_chosen_candidate,
                               _add_last_example_id, _add_run_choice]


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
