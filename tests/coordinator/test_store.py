"""The store: typed rows, a state change and its event in one transaction, metrics upserts."""

import sqlite3

import pytest

from hypolab.contracts import ExperimentStatus, HypothesisStatus
from hypolab.coordinator.store import ExperimentRow, HypothesisRow, Store


def new_experiment(eid="H06.gsm8k", status=ExperimentStatus.queued):
    return ExperimentRow(id=eid, hypothesis_id=eid.split(".")[0], seq=0, kind="train", status=status,
                         config={"env": "gsm8k", "stack": "legacy", "model": "m"}, created_at=1.0, queued_at=1.0)


def events(store, type_=None):
    return [e for e in store.events_since(0) if type_ is None or e.type == type_]


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "lab.sqlite")
    yield s
    s.close()


def test_rows_are_typed_and_statuses_are_enums(store):
    store.set_hypothesis("H06", HypothesisStatus.untested, queued=True)
    store.add_experiment(new_experiment())
    exp, hyp = store.experiment("H06.gsm8k"), store.hypothesis("H06")
    assert isinstance(exp, ExperimentRow) and isinstance(hyp, HypothesisRow)
    assert exp.status is ExperimentStatus.queued and exp.status == "queued"  # the wire and DB string
    assert hyp.status is HypothesisStatus.untested and hyp.queued is True
    assert exp.config["env"] == "gsm8k" and exp.gpus == [] and exp.handle is None
    assert store.experiments(status=ExperimentStatus.queued) == [exp]
    assert store.experiment("nope") is None and store.hypothesis("nope") is None


def test_a_status_change_and_its_event_commit_together(store):
    store.add_experiment(new_experiment())
    store.update_experiment("H06.gsm8k", status=ExperimentStatus.running, handle="42")
    store.update_experiment("H06.gsm8k", reason="no status change: no event")
    assert [(e.payload["status"], e.payload["previous"]) for e in events(store, "experiment")] == [
        ("queued", None), ("running", "queued")]
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.update_experiment("H06.gsm8k", status=ExperimentStatus.failed, exit_code=3)
            store.set_hypothesis("H06", HypothesisStatus.testing)
            raise RuntimeError("the coordinator dies here")
    exp = store.experiment("H06.gsm8k")  # neither the changes nor their events were written
    assert exp.status == ExperimentStatus.running and exp.exit_code is None
    assert store.hypothesis("H06") is None
    assert [e.type for e in events(store)] == ["experiment", "experiment"]


def test_nested_transactions_join_the_outer_one(store):
    with store.transaction():
        store.add_run("k", ["H06"])
        with store.transaction():
            store.set_hypothesis("H06", HypothesisStatus.untested, queued=True)
        # a reader on this thread sees the transaction's own writes
        assert store.hypothesis("H06").queued and store.find_run("k").hypotheses == ["H06"]
    assert [e.type for e in events(store)] == ["run", "hypothesis"]
    assert store.find_run("k").id == 1 and store.find_run("other") is None


def test_metrics_keep_the_last_value_and_mark_rehearsals(store):
    store.add_experiment(new_experiment())
    assert store.add_metrics("H06.gsm8k", [(0, 1.0, {"reward": 0.1, "loss": 2.0}), (1, 2.0, {"reward": 0.2})]) == 3
    assert store.experiment("H06.gsm8k").rehearsal == 0
    store.add_metrics("H06.gsm8k", [(1, 3.0, {"reward": 0.25})], rehearsal=True)
    assert store.series("H06.gsm8k", "reward") == [(0, 0.1), (1, 0.25)]
    assert [m["name"] for m in store.metrics("H06.gsm8k", since=0)] == ["reward"]
    exp = store.experiment("H06.gsm8k")
    assert exp.rehearsal == 1 and exp.last_metric_at is not None
    assert [e.payload["last_step"] for e in events(store, "metrics")] == [1, 1]
    assert store.counts()["metric_values"] == 3


def test_a_database_from_before_the_later_columns_opens(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE experiments (id TEXT PRIMARY KEY, hypothesis_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                 "kind TEXT NOT NULL, status TEXT NOT NULL, config TEXT NOT NULL, control_id TEXT, diff TEXT NOT NULL, "
                 "undeclared TEXT NOT NULL, gpus TEXT NOT NULL DEFAULT '[]', handle TEXT, container TEXT, "
                 "exit_code INTEGER, log_tail TEXT NOT NULL DEFAULT '', reason TEXT NOT NULL DEFAULT '', "
                 "attempts INTEGER NOT NULL DEFAULT 0, rehearsal INTEGER NOT NULL DEFAULT 0, report TEXT, "
                 "created_at REAL NOT NULL, queued_at REAL, started_at REAL, finished_at REAL)")
    conn.execute("INSERT INTO experiments(id, hypothesis_id, seq, kind, status, config, diff, undeclared, created_at) "
                 "VALUES ('H06.gsm8k', 'H06', 0, 'train', 'succeeded', '{}', '[]', '[]', 1.0)")
    conn.commit()
    conn.close()
    store = Store(path)
    exp = store.experiment("H06.gsm8k")
    assert exp.status == ExperimentStatus.succeeded and exp.trainer_config is None and exp.last_metric_at is None
    store.close()
