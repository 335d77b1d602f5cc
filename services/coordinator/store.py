"""The coordinator's SQLite store: one file, WAL journal, schema created on first open.

SQLite is the embedded default (docs/architecture.md): no server to run, one file to back up,
safe against a killed process because every write is a committed transaction. Every
state change appends to `events` in the same transaction as the change itself (the
change and its event commit together or not at all), which `/api/events` streams
(server-sent events) and which survives restarts, so a client resuming with
`Last-Event-ID` misses nothing.

Reads return typed rows (`ExperimentRow`, `HypothesisRow`, `RunRow`, `EventRow`); the
metric read that dashboards poll returns `MetricPoint` dicts that go straight to JSON.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from ..contracts import ExperimentStatus, HypothesisStatus

SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_key TEXT UNIQUE,
    hypotheses  TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS hypotheses (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    queued     INTEGER NOT NULL DEFAULT 0,
    verdict    TEXT,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    id            TEXT PRIMARY KEY,
    hypothesis_id TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    status        TEXT NOT NULL,
    config        TEXT NOT NULL,
    control_id    TEXT,
    diff          TEXT NOT NULL,
    undeclared    TEXT NOT NULL,
    gpus          TEXT NOT NULL DEFAULT '[]',
    handle        TEXT,
    container     TEXT,
    exit_code     INTEGER,
    log_tail      TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    attempts      INTEGER NOT NULL DEFAULT 0,
    rehearsal     INTEGER NOT NULL DEFAULT 0,
    report        TEXT,
    trainer_config TEXT,
    last_metric_at REAL,
    created_at    REAL NOT NULL,
    queued_at     REAL,
    started_at    REAL,
    finished_at   REAL
);
CREATE TABLE IF NOT EXISTS metrics (
    experiment_id TEXT NOT NULL,
    step          INTEGER NOT NULL,
    name          TEXT NOT NULL,
    value         REAL NOT NULL,
    time          REAL NOT NULL,
    PRIMARY KEY (experiment_id, step, name)
);
CREATE TABLE IF NOT EXISTS submissions (
    submission_id TEXT PRIMARY KEY,
    experiment_id TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    runner        TEXT NOT NULL,
    submitted_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT,
    time    REAL NOT NULL,
    type    TEXT NOT NULL,
    payload TEXT NOT NULL
);
"""

_JSON_COLUMNS = ("config", "diff", "undeclared", "gpus", "report", "trainer_config", "verdict", "hypotheses",
                 "payload")


def _row(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    out = {}
    for (name, *_), value in zip(cursor.description, row):
        out[name] = json.loads(value) if name in _JSON_COLUMNS and value is not None else value
    return out


class _Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExperimentFields(_Row):
    """An experiment's columns as the API shows them (everything but the runner's handle)."""

    id: str
    hypothesis_id: str
    seq: int
    kind: Literal["train", "audit"]
    status: ExperimentStatus
    config: dict[str, Any] = Field(description="the resolved ExperimentSpec")
    control_id: str | None = None
    diff: list[dict[str, Any]] = Field(default_factory=list, description="FieldDiffs against the control")
    undeclared: list[str] = Field(default_factory=list)
    gpus: list[int] = Field(default_factory=list)
    container: str | None = None
    exit_code: int | None = None
    log_tail: str = ""
    reason: str = ""
    attempts: int = 0
    rehearsal: int = 0
    report: dict[str, Any] | None = Field(None, description="the AuditReport, when one was attached")
    trainer_config: dict[str, Any] | None = Field(None, description="the trainer's TrainerConfigReport")
    last_metric_at: float | None = None
    created_at: float
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None


class ExperimentRow(ExperimentFields):
    """One row of `experiments`."""

    handle: str | None = None


class ExperimentState(_Row):
    """The few columns the hot ingestion path needs."""

    status: ExperimentStatus
    rehearsal: int
    hypothesis_id: str


class HypothesisRow(_Row):
    id: str
    status: HypothesisStatus
    queued: bool
    verdict: dict[str, Any] | None = None
    updated_at: float


class RunRow(_Row):
    id: int
    request_key: str | None
    hypotheses: list[str]
    created_at: float


class EventRow(_Row):
    seq: int
    time: float
    type: str
    payload: dict[str, Any]


class SubmissionRow(_Row):
    """One job submitted to a cluster runner (Ray): one per experiment and attempt."""

    submission_id: str
    experiment_id: str
    attempt: int
    runner: str
    submitted_at: float


class MetricPoint(TypedDict):
    """One stored metric value (a plain dict: the polled read goes straight to JSON)."""

    step: int
    name: str
    value: float
    time: float


class Store:
    """A thread-safe handle on the coordinator's database file.

    Writes go through one connection under a lock; `transaction()` groups them (nested
    uses join the outer transaction). Reads use a connection per thread.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0  # nesting of transaction() on the write connection
        self._tx_thread: int | None = None  # the thread inside it
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
        self._conn.row_factory = _row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            self._conn.executescript(_SCHEMA)
            columns = {r["name"] for r in self._conn.execute("PRAGMA table_info(experiments)").fetchall()}
            if "last_metric_at" not in columns:  # a database from schema v2 before this column
                self._conn.execute("ALTER TABLE experiments ADD COLUMN last_metric_at REAL")
            if "trainer_config" not in columns:  # the resolved config a trainer reports (trainer issue)
                self._conn.execute("ALTER TABLE experiments ADD COLUMN trainer_config TEXT")
            self._conn.execute(
                "INSERT INTO meta(key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                (str(SCHEMA_VERSION),),
            )

    # -- plumbing ------------------------------------------------------------------------

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[dict[str, Any]]:
        """Reads use a connection of their own per thread: in WAL mode they never wait for writers.

        Inside a transaction on this thread, reads go to the write connection, so they see
        the transaction's own changes.
        """
        if self._depth and self._tx_thread == threading.get_ident():
            return self._conn.execute(sql, tuple(args)).fetchall()
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            conn = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            conn.row_factory = _row
            conn.execute("PRAGMA busy_timeout=5000")
            self._local.conn = conn
            with self._lock:
                self._readers.append(conn)
        if self._closed:
            raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
        return conn.execute(sql, tuple(args)).fetchall()

    @contextmanager
    def transaction(self) -> Iterator["Store"]:
        """`with store.transaction(): ...` — one atomic write (BEGIN IMMEDIATE .. COMMIT).

        A state change and the event that announces it are written inside one of these.
        Nested uses join the outermost transaction.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth, self._tx_thread = 1, threading.get_ident()
            try:
                yield self
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth, self._tx_thread = 0, None

    def _exec(self, sql: str, args: Iterable[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._conn.execute(sql, tuple(args))

    def get_meta(self, key: str) -> Any:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0]["value"]) if rows else None

    def set_meta(self, key: str, value: Any) -> None:
        self._exec("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                   (key, json.dumps(value)))

    def lab_id(self) -> str:
        """This database's lab: a random id made once, which names its jobs on a shared cluster."""
        with self._lock:
            lab = self.get_meta("lab_id")
            if lab is None:
                lab = secrets.token_hex(4)
                self.set_meta("lab_id", lab)
            return lab

    def schema_version(self) -> int:
        return int(self.get_meta("schema_version"))

    def ping(self) -> tuple[bool, str]:
        """Can we read, and is the file writable? (ok, detail) for the health endpoint.

        It does not take the write lock, so health checks stay fast under write load.
        """
        try:
            self._query("SELECT count(*) AS n FROM meta")
            if not os.access(self.path, os.W_OK):
                return False, f"sqlite {self.path}: not writable"
            return True, f"sqlite {self.path} (schema v{SCHEMA_VERSION})"
        except sqlite3.Error as exc:
            return False, f"sqlite {self.path}: {exc}"

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._conn.close()
            for conn in self._readers:
                conn.close()

    # -- events --------------------------------------------------------------------------

    def emit(self, type_: str, payload: dict[str, Any]) -> None:
        """Append an event; call it inside the transaction of the change it announces."""
        self._exec("INSERT INTO events(time, type, payload) VALUES (?, ?, ?)",
                   (time.time(), type_, json.dumps(payload)))

    def events_since(self, seq: int, limit: int = 500) -> list[EventRow]:
        rows = self._query("SELECT seq, time, type, payload FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
        return [EventRow(**r) for r in rows]

    def last_event_seq(self) -> int:
        return self._query("SELECT coalesce(max(seq), 0) AS s FROM events")[0]["s"]

    # -- runs ----------------------------------------------------------------------------

    def find_run(self, request_key: str) -> RunRow | None:
        rows = self._query("SELECT * FROM runs WHERE request_key = ?", (request_key,))
        return RunRow(**rows[0]) if rows else None

    def add_run(self, request_key: str | None, hypotheses: list[str]) -> int:
        """A new run and its `run` event, in one transaction."""
        with self.transaction():
            cur = self._exec("INSERT INTO runs(request_key, hypotheses, created_at) VALUES (?, ?, ?)",
                             (request_key, json.dumps(hypotheses), time.time()))
            self.emit("run", {"id": cur.lastrowid, "hypotheses": hypotheses})
        return cur.lastrowid

    # -- hypotheses ----------------------------------------------------------------------

    def hypothesis(self, hid: str) -> HypothesisRow | None:
        rows = self._query("SELECT * FROM hypotheses WHERE id = ?", (hid,))
        return HypothesisRow(**rows[0]) if rows else None

    def hypotheses(self) -> dict[str, HypothesisRow]:
        return {r["id"]: HypothesisRow(**r) for r in self._query("SELECT * FROM hypotheses")}

    def set_hypothesis(self, hid: str, status: HypothesisStatus, *, queued: bool | None = None,
                       verdict: dict[str, Any] | None = None) -> None:
        """Change a hypothesis; a change of status and its event are one transaction."""
        with self.transaction():
            current = self.hypothesis(hid)
            q = int(queued) if queued is not None else (int(current.queued) if current else 0)
            v = verdict if verdict is not None else (current.verdict if current else None)
            self._exec(
                "INSERT INTO hypotheses(id, status, queued, verdict, updated_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(id) DO UPDATE SET status=excluded.status, queued=excluded.queued, "
                "verdict=excluded.verdict, updated_at=excluded.updated_at",
                (hid, str(status), q, json.dumps(v) if v is not None else None, time.time()),
            )
            if current is None or current.status != status:
                self.emit("hypothesis", {"id": hid, "status": str(status), "verdict": v})

    # -- experiments ---------------------------------------------------------------------

    def experiment(self, eid: str) -> ExperimentRow | None:
        rows = self._query("SELECT * FROM experiments WHERE id = ?", (eid,))
        return ExperimentRow(**rows[0]) if rows else None

    def experiment_state(self, eid: str) -> ExperimentState | None:
        """The few columns the hot ingestion path needs (no JSON decoding)."""
        rows = self._query("SELECT status, rehearsal, hypothesis_id FROM experiments WHERE id = ?", (eid,))
        return ExperimentState(**rows[0]) if rows else None

    def experiments(self, status: ExperimentStatus | None = None,
                    hypothesis_id: str | None = None) -> list[ExperimentRow]:
        sql, args = "SELECT * FROM experiments WHERE 1=1", []
        if status:
            sql += " AND status = ?"
            args.append(str(status))
        if hypothesis_id:
            sql += " AND hypothesis_id = ?"
            args.append(hypothesis_id)
        return [ExperimentRow(**r) for r in self._query(sql + " ORDER BY created_at, seq", args)]

    def add_experiment(self, row: ExperimentRow) -> None:
        """A new experiment and its `experiment` event (previous: None), in one transaction."""
        data = row.model_dump(mode="json")
        cols = list(data)
        values = [json.dumps(data[c]) if c in _JSON_COLUMNS and data[c] is not None else data[c] for c in cols]
        with self.transaction():
            cur = self._exec(f"INSERT OR IGNORE INTO experiments({', '.join(cols)}) "
                             f"VALUES ({', '.join('?' * len(cols))})", values)
            if cur.rowcount:
                self.emit("experiment", {"id": row.id, "status": str(row.status), "previous": None})

    def update_experiment(self, eid: str, **fields: Any) -> None:
        """Change columns of one experiment; a status change and its event are one transaction."""
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        values = [json.dumps(v) if k in _JSON_COLUMNS and v is not None else
                  str(v) if k == "status" else v for k, v in fields.items()]
        with self.transaction():
            before = self.experiment(eid)
            self._exec(f"UPDATE experiments SET {sets} WHERE id = ?", (*values, eid))
            if "status" in fields and before is not None and before.status != fields["status"]:
                self.emit("experiment", {"id": eid, "status": str(fields["status"]), "previous": str(before.status),
                                         "exit_code": fields.get("exit_code", before.exit_code),
                                         "reason": fields.get("reason", before.reason)})

    # -- submissions ---------------------------------------------------------------------

    def add_submission(self, row: SubmissionRow) -> None:
        """Record a cluster job; call it in the transaction that marks its experiment running."""
        self._exec("INSERT OR IGNORE INTO submissions(submission_id, experiment_id, attempt, runner, submitted_at) "
                   "VALUES (?, ?, ?, ?, ?)", (row.submission_id, row.experiment_id, row.attempt, row.runner,
                                               row.submitted_at))

    def submissions(self, experiment_id: str | None = None) -> list[SubmissionRow]:
        sql, args = "SELECT * FROM submissions", []
        if experiment_id:
            sql, args = sql + " WHERE experiment_id = ?", [experiment_id]
        return [SubmissionRow(**r) for r in self._query(sql + " ORDER BY submitted_at", args)]

    # -- metrics -------------------------------------------------------------------------

    def add_metrics(self, experiment_id: str, events: list[tuple[int, float, dict[str, float]]],
                    rehearsal: bool = False) -> int:
        """Store (step, time, {name: value}) rows and their `metrics` event in one transaction.

        A repeated (step, name) keeps the last value; `rehearsal` marks the experiment.
        """
        rows = [(experiment_id, step, name, value, t) for step, t, metrics in events for name, value in metrics.items()]
        with self.transaction():
            self._conn.executemany(
                "INSERT INTO metrics(experiment_id, step, name, value, time) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(experiment_id, step, name) DO UPDATE SET value=excluded.value, time=excluded.time",
                rows,
            )
            last = max(step for step, _, _ in events)
            self._conn.execute("UPDATE experiments SET last_metric_at = ?, rehearsal = max(rehearsal, ?) WHERE id = ?",
                               (time.time(), int(rehearsal), experiment_id))
            self.emit("metrics", {"id": experiment_id, "last_step": last, "count": len(events)})
        return len(rows)

    def metrics(self, experiment_id: str, since: int = -1, name: str | None = None) -> list[MetricPoint]:
        sql = "SELECT step, name, value, time FROM metrics WHERE experiment_id = ? AND step > ?"
        args: list[Any] = [experiment_id, since]
        if name:
            sql += " AND name = ?"
            args.append(name)
        return self._query(sql + " ORDER BY step, name", args)  # type: ignore[return-value]

    def series(self, experiment_id: str, name: str) -> list[tuple[int, float]]:
        return [(r["step"], r["value"]) for r in self.metrics(experiment_id, name=name)]

    def counts(self) -> dict[str, Any]:
        exp = self._query("SELECT status, count(*) AS n FROM experiments GROUP BY status")
        hyp = self._query("SELECT status, count(*) AS n FROM hypotheses GROUP BY status")
        n_metrics = self._query("SELECT count(*) AS n FROM metrics")[0]["n"]
        return {"experiments": {r["status"]: r["n"] for r in exp}, "hypotheses": {r["status"]: r["n"] for r in hyp},
                "metric_values": n_metrics}
