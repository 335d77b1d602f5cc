"""The coordinator's SQLite store: one file, WAL journal, schema created on first open.

SQLite is the embedded default (DESIGN.md): no server to run, one file to back up,
safe against a killed process because every write is a committed transaction.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class Store:
    """A thread-safe handle on the coordinator's database file."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        with self._lock:
            self._conn.executescript(_SCHEMA)
            self._conn.execute(
                "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )

    def schema_version(self) -> int:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        return int(row[0])

    def ping(self) -> tuple[bool, str]:
        """Can we read and write? Returns (ok, detail) for the health endpoint."""
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.execute("SELECT count(*) FROM meta").fetchone()
                self._conn.execute("ROLLBACK")
            return True, f"sqlite {self.path} (schema v{SCHEMA_VERSION})"
        except sqlite3.Error as exc:
            return False, f"sqlite {self.path}: {exc}"

    def close(self) -> None:
        with self._lock:
            self._conn.close()
