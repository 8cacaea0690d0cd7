"""The results store: round trip, idempotence, concurrent writer processes, export."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import numpy as np
import pandas as pd
import pytest

from xstilts.store import METRIC_COLUMNS, Store, environment_info, read_export


def _rows(langs=("en", "de", "fr"), base=0.5, split="test"):
    return [{"task": "xnli", "lang": lang, "split": split, "metric": m, "value": base + i / 100 + j / 1000,
             "n": 100 + i, "seed": 0} for i, lang in enumerate(langs) for j, m in enumerate(("accuracy", "f1"))]


def _count(store: Store, table: str) -> int:
    con = sqlite3.connect(store.path)
    try:
        return con.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


@pytest.fixture
def store(tmp_path) -> Store:
    s = Store(tmp_path / "results.sqlite")
    for seed in (0, 1):
        s.add_run(f"r{seed}", config={"lr": 1e-5, "seed": seed}, config_hash=f"h{seed}", model="xlmr",
                  setting="siqa", target="xnli", seed=seed, labels={"grid": "main"})
    s.add_run("ret", config={}, config_hash="h", model="xlmr", setting="none", target="tatoeba", seed=None)
    return s


def test_wal_mode_and_schema(store):
    con = sqlite3.connect(store.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    con.close()
    assert {"runs", "phases", "metrics", "example_scores", "environment", "meta"} <= tables


def test_folder_path_gives_default_file(tmp_path):
    assert Store(tmp_path).path == tmp_path / "results.sqlite"


def test_round_trip(store):
    rows = _rows()
    assert store.add_metrics("r0", "eval-abc", rows) == len(rows)
    store.add_metrics("ret", "eval-ret", [{"task": "tatoeba", "lang": "de", "split": "test", "metric": "accuracy",
                                           "value": 0.25, "n": 1000}])
    df = store.metrics_frame()
    assert list(df.columns) == METRIC_COLUMNS
    got = df[df.run_id == "r0"].sort_values(["lang", "metric"]).reset_index(drop=True)
    want = pd.DataFrame(rows).sort_values(["lang", "metric"]).reset_index(drop=True)
    assert got["value"].tolist() == want["value"].tolist()  # float64 round trip: exact
    assert got["n"].tolist() == want["n"].tolist()
    assert set(got["model"]) == {"xlmr"} and set(got["setting"]) == {"siqa"} and set(got["seed"]) == {0}
    ret = df[df.run_id == "ret"].iloc[0]
    assert pd.isna(ret["seed"]) and ret["value"] == 0.25
    assert store.done_runs() == {"r0", "ret"}
    q = store.query("SELECT config_hash, xstilts_version FROM runs WHERE run_id = ?", ["r1"])
    assert q.iloc[0]["config_hash"] == "h1" and q.iloc[0]["xstilts_version"]


def test_idempotent(store):
    for _ in range(3):
        store.add_run("r0", config={"lr": 1e-5}, config_hash="h0", model="xlmr", setting="siqa", target="xnli",
                      seed=0)
        store.add_phase("r0", "eval-abc", "eval", status="trained", config={"split": "test"}, wall_s=1.5)
        store.add_metrics("r0", "eval-abc", _rows())
        store.add_example_scores("r0", "xnli", "de", "test", "accuracy", np.array([1, 0, 1]))
        store.add_environment("r0", environment_info())
    assert _count(store, "runs") == 3
    assert _count(store, "phases") == 1
    assert _count(store, "metrics") == len(_rows())
    assert _count(store, "example_scores") == 1
    assert _count(store, "environment") == 1
    # a rerun with new values replaces, never duplicates
    store.add_metrics("r0", "eval-abc", _rows(base=0.9))
    df = store.metrics_frame()
    assert len(df[df.run_id == "r0"]) == len(_rows())
    assert df[df.run_id == "r0"]["value"].min() >= 0.9


def test_phases_timings_and_example_scores(store):
    store.add_phase("r0", "target-1", "target", status="trained", config={"lr": 1}, wall_s=10.0, s_per_epoch=5.0,
                    examples_per_s=100.0, tokens_per_s=1e4, peak_mem_mb=2048, path="/tmp/x")
    t = store.timings_frame()
    assert t.iloc[0][["kind", "wall_s", "s_per_epoch", "peak_mem_mb", "setting"]].tolist() == [
        "target", 10.0, 5.0, 2048.0, "siqa"]
    scores = np.random.default_rng(0).random(37)
    store.add_example_scores("r1", "xnli", "fr", "test", "f1", scores)
    ex = store.example_scores(task="xnli")
    assert ex.iloc[0]["scores"].dtype == np.float32
    np.testing.assert_array_equal(ex.iloc[0]["scores"], scores.astype(np.float32))
    assert ex.iloc[0]["seed"] == 1 and ex.iloc[0]["n"] == 37


def test_environment_info_shape():
    info = environment_info()
    assert set(info) >= {"python", "platform", "cpu_count", "gpu", "git_rev", "packages"}
    assert set(info["packages"]) >= {"torch", "transformers", "accelerate", "datasets", "xstilts"}
    assert info["packages"]["xstilts"]


def test_environment_git_failure_is_none(tmp_path):
    assert environment_info(cwd=tmp_path)["git_rev"] is None  # not a repository


def _writer(path: str, worker: int, n: int) -> None:
    s = Store(path)
    s.add_run(f"w{worker}", config={"worker": worker}, config_hash=f"h{worker}", model="m", setting="none",
              target="xnli", seed=worker)
    for i in range(n):  # one transaction per row: maximum contention
        s.add_metrics(f"w{worker}", "eval", [{"task": "xnli", "lang": f"l{i}", "split": "test",
                                              "metric": "accuracy", "value": i / n, "n": 1}])


def test_concurrent_writer_processes(tmp_path):
    path = str(tmp_path / "results.sqlite")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 500)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    s = Store(path)
    assert _count(s, "metrics") == 2000
    df = s.metrics_frame()
    assert len(df) == 2000
    assert df.groupby("run_id").size().to_dict() == {f"w{w}": 500 for w in range(4)}


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_round_trip(store, tmp_path, suffix):
    store.add_metrics("r0", "e", _rows())
    store.add_metrics("r1", "e", _rows(base=0.6, split="dev"))
    store.add_metrics("ret", "e", [{"task": "tatoeba", "lang": "de", "split": "test", "metric": "accuracy",
                                    "value": 1 / 3, "n": None}])
    out = store.export(tmp_path / f"metrics.{suffix}")
    back = read_export(out)
    want = store.metrics_frame()
    pd.testing.assert_frame_equal(back.reset_index(drop=True), want.reset_index(drop=True), check_exact=False,
                                  rtol=1e-15)


def test_export_rejects_unknown_extension(store, tmp_path):
    with pytest.raises(ValueError, match="csv or .parquet"):
        store.export(tmp_path / "x.xlsx")


def test_each_seed_of_a_run_keeps_its_rows(store):
    """One run with several target seeds (target.seeds: [0, 1, 2]) writes one eval phase per seed."""
    for seed in (0, 1, 2):
        rows = [{k: v for k, v in r.items() if k != "seed"} for r in _rows(base=0.1 * (seed + 1))]
        store.add_metrics("multi", f"eval-{seed}", rows, seed=seed)
        store.add_example_scores("multi", "xnli", "de", "test", "accuracy", np.array([seed, 1, 0]), seed=seed,
                                 phase_key=f"eval-{seed}")
    store.add_run("multi", config={}, config_hash="m", model="xlmr", setting="siqa", target="xnli", seed=None)
    assert _count(store, "metrics") == 3 * len(_rows())
    df = store.metrics_frame()
    de = df[(df.run_id == "multi") & (df.lang == "de") & (df.metric == "accuracy")].sort_values("seed")
    assert de["seed"].tolist() == [0, 1, 2]
    assert de["value"].tolist() == [0.1 * (s + 1) + 0.01 for s in (0, 1, 2)]  # _rows: base + 1/100 for "de"
    ex = store.example_scores(task="xnli").query("run_id == 'multi'").sort_values("seed")
    assert ex["seed"].tolist() == [0, 1, 2] and [s[0] for s in ex["scores"]] == [0.0, 1.0, 2.0]


# The schema-1 tables exactly as xstilts <= 2279ed2 created them (metric rows keyed without the seed).
_SCHEMA_1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE runs (run_id TEXT PRIMARY KEY, model TEXT, setting TEXT NOT NULL, target TEXT, seed INTEGER,
    config_hash TEXT, config TEXT, labels TEXT, xstilts_version TEXT, created TEXT, updated TEXT);
CREATE TABLE phases (run_id TEXT NOT NULL, phase_key TEXT NOT NULL, kind TEXT, status TEXT, config TEXT, wall_s REAL,
    s_per_epoch REAL, examples_per_s REAL, tokens_per_s REAL, peak_mem_mb REAL, path TEXT, xstilts_version TEXT,
    created TEXT, updated TEXT, PRIMARY KEY (run_id, phase_key));
CREATE TABLE metrics (run_id TEXT NOT NULL, task TEXT NOT NULL, lang TEXT NOT NULL, split TEXT NOT NULL,
    metric TEXT NOT NULL, phase_key TEXT, value REAL, n INTEGER, xstilts_version TEXT, created TEXT, updated TEXT,
    PRIMARY KEY (run_id, task, lang, split, metric));
CREATE TABLE example_scores (run_id TEXT NOT NULL, task TEXT NOT NULL, lang TEXT NOT NULL, split TEXT NOT NULL,
    metric TEXT NOT NULL, n INTEGER, scores BLOB, xstilts_version TEXT, created TEXT, updated TEXT,
    PRIMARY KEY (run_id, task, lang, split, metric));
CREATE TABLE environment (run_id TEXT PRIMARY KEY, python TEXT, platform TEXT, xstilts_version TEXT, torch TEXT,
    transformers TEXT, gpu TEXT, git_rev TEXT, info TEXT, created TEXT, updated TEXT);
CREATE INDEX metrics_task ON metrics (task, split, metric);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO runs VALUES ('a', 'xlmr', 'siqa', 'xnli', 3, 'h', '{}', '{}', '0.1', 't', 't');
INSERT INTO runs VALUES ('b', 'xlmr', 'none', 'tatoeba', NULL, 'h', '{}', '{}', '0.1', 't', 't');
INSERT INTO phases VALUES ('a', 'eval-a', 'eval', 'trained', '{}', 1, NULL, NULL, NULL, NULL, '/p', '0.1', 't', 't');
INSERT INTO metrics VALUES ('a', 'xnli', 'de', 'test', 'accuracy', 'eval-a', 0.75, 8, '0.1', 't', 't');
INSERT INTO metrics VALUES ('b', 'tatoeba', 'de', 'test', 'accuracy', 'eval-b', 0.5, 4, '0.1', 't', 't');
INSERT INTO example_scores VALUES ('a', 'xnli', 'de', 'test', 'accuracy', 2, X'0000803F00000000', '0.1', 't', 't');
"""


def test_schema_1_store_is_migrated_in_place(tmp_path):
    path = tmp_path / "results.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_1)
    con.close()
    store = Store(path)
    df = store.metrics_frame().set_index("run_id")
    assert df.loc["a", "seed"] == 3 and df.loc["a", "value"] == 0.75 and df.loc["a", "n"] == 8
    assert pd.isna(df.loc["b", "seed"]) and df.loc["b", "value"] == 0.5
    ex = store.example_scores().iloc[0]
    assert ex["seed"] == 3 and ex["scores"].tolist() == [1.0, 0.0]
    assert store.timings_frame().iloc[0]["seed"] == 3
    assert store.query("SELECT value FROM meta WHERE key = 'schema_version'").iloc[0, 0] == "2"
    # after the migration another seed of run "a" is a new row, not an overwrite
    store.add_metrics("a", "eval-a4", [{"task": "xnli", "lang": "de", "split": "test", "metric": "accuracy",
                                        "value": 0.5, "n": 8}], seed=4)
    assert sorted(store.metrics_frame().query("run_id == 'a'")["seed"]) == [3, 4]
    Store(path)  # opening a migrated store again changes nothing
    assert _count(store, "metrics") == 3
