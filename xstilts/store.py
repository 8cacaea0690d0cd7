"""The results store: one SQLite file per project folder (``<workdir>/results.sqlite``).

One row per run, phase, task, language, split and metric, each tied to the
run's config hash, seed, intermediate setting, target and code version, so a
number in a report can always be traced back to what produced it (as
lm-eval stores task versions, config, git hash and environment with each
result). Reports (:mod:`xstilts.report`) read this store and nothing else.

Concurrency: the database is in WAL mode (``synchronous=NORMAL``) with a
30 s busy timeout; each process and thread uses its own connection (a Store
pickled to a Ray worker or inherited by a fork opens a new one), every write
is one ``BEGIN IMMEDIATE`` transaction retried on ``database is locked``, so
several writer processes may share one file and readers never block them. Re-adding the same key replaces the row (upsert), so a
rerun never duplicates results.

Tables (``created`` / ``updated`` are UTC ISO-8601 strings)::

    meta            key, value                      schema version
    runs            run_id PK, model, setting, target, seed, config_hash,
                    config (JSON), labels (JSON), xstilts_version, created, updated
    phases          (run_id, phase_key) PK, kind, seed, status, config (JSON), wall_s,
                    s_per_epoch, examples_per_s, tokens_per_s, peak_mem_mb, path,
                    xstilts_version, created, updated
    metrics         (run_id, seed, task, lang, split, metric) PK, phase_key, value, n,
                    xstilts_version, created, updated
    example_scores  (run_id, seed, task, lang, split, metric) PK, phase_key, n, scores
                    (float32 little-endian blob), xstilts_version, created, updated

Metric rows and per-example scores are keyed by their target seed: one run with
``target.seeds: [0, 1, 2]`` keeps three seeds' rows. ``seed`` is stored as
:data:`NO_SEED` (-1) for seedless rows (retrieval scored on the encoder) and
read back as NULL. Stores of schema version 1 (keyed without the seed) are
migrated when opened: their rows take their run's seed.
    environment     run_id PK, python, platform, xstilts_version, torch,
                    transformers, gpu, git_rev, info (JSON), created, updated

Example:
    >>> store = Store("runs/results.sqlite")
    >>> store.add_run("r1", config={...}, config_hash="ab12", model="xlm-roberta-base",
    ...               setting="siqa", target="xnli", seed=0)
    >>> store.add_metrics("r1", "eval-ab12", rows)
    >>> store.metrics_frame().groupby(["setting", "lang"]).value.mean()
"""

from __future__ import annotations

import json
import os
import platform
import random
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__

SCHEMA_VERSION = 2
NO_SEED = -1  # the stored seed of seedless metric rows; frames read it back as NULL
BUSY_TIMEOUT_S = 30.0
DEFAULT_NAME = "results.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    model TEXT,
    setting TEXT NOT NULL,
    target TEXT,
    seed INTEGER,
    config_hash TEXT,
    config TEXT,
    labels TEXT,
    xstilts_version TEXT,
    created TEXT,
    updated TEXT
);
CREATE TABLE IF NOT EXISTS phases (
    run_id TEXT NOT NULL,
    phase_key TEXT NOT NULL,
    kind TEXT,
    seed INTEGER,
    status TEXT,
    config TEXT,
    wall_s REAL,
    s_per_epoch REAL,
    examples_per_s REAL,
    tokens_per_s REAL,
    peak_mem_mb REAL,
    path TEXT,
    xstilts_version TEXT,
    created TEXT,
    updated TEXT,
    PRIMARY KEY (run_id, phase_key)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL,
    seed INTEGER NOT NULL,
    task TEXT NOT NULL,
    lang TEXT NOT NULL,
    split TEXT NOT NULL,
    metric TEXT NOT NULL,
    phase_key TEXT,
    value REAL,
    n INTEGER,
    xstilts_version TEXT,
    created TEXT,
    updated TEXT,
    PRIMARY KEY (run_id, seed, task, lang, split, metric)
);
CREATE TABLE IF NOT EXISTS example_scores (
    run_id TEXT NOT NULL,
    seed INTEGER NOT NULL,
    task TEXT NOT NULL,
    lang TEXT NOT NULL,
    split TEXT NOT NULL,
    metric TEXT NOT NULL,
    phase_key TEXT,
    n INTEGER,
    scores BLOB,
    xstilts_version TEXT,
    created TEXT,
    updated TEXT,
    PRIMARY KEY (run_id, seed, task, lang, split, metric)
);
CREATE TABLE IF NOT EXISTS environment (
    run_id TEXT PRIMARY KEY,
    python TEXT,
    platform TEXT,
    xstilts_version TEXT,
    torch TEXT,
    transformers TEXT,
    gpu TEXT,
    git_rev TEXT,
    info TEXT,
    created TEXT,
    updated TEXT
);
CREATE INDEX IF NOT EXISTS metrics_task ON metrics (task, split, metric);
"""

METRIC_COLUMNS = ["run_id", "model", "setting", "target", "seed", "task", "lang", "split", "metric", "value", "n"]
TIMING_COLUMNS = ["run_id", "model", "setting", "target", "seed", "phase_key", "kind", "status", "wall_s",
                  "s_per_epoch", "examples_per_s", "tokens_per_s", "peak_mem_mb", "path"]


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _json(obj) -> str | None:
    return None if obj is None else json.dumps(obj, sort_keys=True, default=str)


def _num(x) -> float | None:
    return None if x is None else float(x)


def _is_locked(e: sqlite3.OperationalError) -> bool:
    msg = str(e).lower()
    return "locked" in msg or "busy" in msg


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [r[1] for r in con.execute(f"PRAGMA table_info({table})")]


def _migrate(con: sqlite3.Connection) -> None:
    """Bring a schema-1 store (metric rows keyed without their seed) to the current schema, in place.

    Each old row takes its run's seed (:data:`NO_SEED` when the run has none): a schema-1
    store kept one row per key, so nothing is lost that the file still holds.
    """
    if "seed" not in _columns(con, "phases"):
        con.execute("ALTER TABLE phases ADD COLUMN seed INTEGER")
        con.execute("UPDATE phases SET seed = (SELECT r.seed FROM runs r WHERE r.run_id = phases.run_id) "
                    "WHERE kind IN ('target', 'eval')")
    for table in ("metrics", "example_scores"):
        cols = _columns(con, table)
        if "seed" in cols:
            continue
        con.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
        con.execute(f"DROP INDEX IF EXISTS {table}_task")
        create = _SCHEMA.split(f"CREATE TABLE IF NOT EXISTS {table} (")[1].split(";")[0]
        con.execute(f"CREATE TABLE {table} ({create}")
        keep = [c for c in cols if c != "seed"]
        old = ", ".join(f"o.{c}" for c in keep)
        con.execute(f"INSERT INTO {table} (seed, {', '.join(keep)}) "
                    f"SELECT COALESCE(r.seed, {NO_SEED}), {old} FROM {table}_v1 o "
                    f"LEFT JOIN runs r ON r.run_id = o.run_id")
        con.execute(f"DROP TABLE {table}_v1")
    con.execute("CREATE INDEX IF NOT EXISTS metrics_task ON metrics (task, split, metric)")


def _seed(seed) -> int | None:
    """A seed for the ``seed`` column; None stands for "the run's seed" (see :data:`_RUN_SEED`)."""
    return None if seed is None or (isinstance(seed, float) and np.isnan(seed)) else int(seed)


# The seed of a row written without one: its run's, else NO_SEED (so single-seed callers need not pass it).
_RUN_SEED = f"COALESCE(?, (SELECT seed FROM runs WHERE run_id = ?), {NO_SEED})"


class Store:
    """The results store of one project folder.

    Args:
        path: the SQLite file, or a folder (then ``<folder>/results.sqlite``).
            Parent folders are created; the schema is created on first use.
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        if path.is_dir() or (not path.suffix and not path.exists()):
            path = path / DEFAULT_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._local = threading.local()
        self._write(self._create_schema, wal=True)

    def __repr__(self) -> str:
        return f"Store({str(self.path)!r})"

    # ------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        """This process's and thread's connection (a pickled or forked Store opens its own)."""
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            con.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            con.execute("PRAGMA synchronous = NORMAL")  # WAL: durable across crashes of the process
            self._local.con, self._local.pid = con, os.getpid()
        return con

    def close(self) -> None:
        """Close this thread's connection (reopened on the next call)."""
        con = getattr(self._local, "con", None)
        if con is not None and self._local.pid == os.getpid():
            con.close()
        self._local.con = None

    def __getstate__(self):
        return {"path": self.path}

    def __setstate__(self, state):
        self.path = state["path"]
        self._local = threading.local()

    def _write(self, fn, *, wal: bool = False, attempts: int = 20):
        """Run ``fn(con)`` in one ``BEGIN IMMEDIATE`` transaction, retrying while the file is locked.

        The busy timeout already waits up to 30 s inside SQLite; the retry
        loop covers the cases it does not (e.g. a WAL switch racing another
        process, or a lock held for longer than the timeout).
        """
        for attempt in range(attempts):
            con = self._connect()
            try:
                if wal:  # persistent in the file; must run outside a transaction
                    con.execute("PRAGMA journal_mode = WAL")
                con.execute("BEGIN IMMEDIATE")
                try:
                    out = fn(con)
                    con.execute("COMMIT")
                    return out
                except BaseException:
                    if con.in_transaction:
                        con.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as e:
                if not _is_locked(e) or attempt == attempts - 1:
                    raise
                time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))

    def _read(self, sql: str, params: Iterable = ()) -> pd.DataFrame:
        return pd.read_sql_query(sql, self._connect(), params=tuple(params))

    @staticmethod
    def _create_schema(con: sqlite3.Connection) -> None:
        for stmt in _SCHEMA.split(";"):
            if stmt.strip():
                con.execute(stmt)
        _migrate(con)
        con.execute("INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (str(SCHEMA_VERSION),))

    # ------------------------------------------------------------ writes

    def add_run(self, run_id: str, *, config: dict, config_hash: str, model: str, setting: str, target: str | None,
                seed: int | None, labels: dict | None = None) -> None:
        """Record (or replace) one run: one intermediate setting x target x seed.

        Args:
            run_id: unique id of the run.
            config: the full resolved config (stored as JSON).
            config_hash: hash of ``config``.
            model: the pretrained encoder, e.g. ``"xlm-roberta-large"``.
            setting: intermediate setting label: ``"none"`` (no intermediate
                training, the baseline), ``"siqa"``, ``"siqa+mlm"``, ``"mnli@10%"``...
            target: the target task.
            seed: the target fine-tuning seed (None for seedless targets such
                as retrieval scored straight on the encoder).
            labels: free-form extra labels (JSON).
        """
        now = _now()
        seed = None if seed is None else int(seed)
        self._write(lambda con: con.execute(
            """INSERT INTO runs (run_id, model, setting, target, seed, config_hash, config, labels, xstilts_version,
                                 created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (run_id) DO UPDATE SET model = excluded.model, setting = excluded.setting,
                   target = excluded.target, seed = excluded.seed, config_hash = excluded.config_hash,
                   config = excluded.config, labels = excluded.labels, xstilts_version = excluded.xstilts_version,
                   updated = excluded.updated""",
            (run_id, model, setting, target, seed, config_hash, _json(config), _json(labels or {}), __version__,
             now, now)))

    def add_phase(self, run_id: str, phase_key: str, kind: str, *, status: str, config: dict,
                  seed: int | None = None, wall_s: float | None = None, s_per_epoch: float | None = None,
                  examples_per_s: float | None = None, tokens_per_s: float | None = None,
                  peak_mem_mb: float | None = None, path: str | os.PathLike | None = None) -> None:
        """Record (or replace) one phase of a run (``mlm``, ``intermediate``, ``target``, ``eval``).

        ``path`` is the phase folder; an eval phase's predictions are read
        from ``<path>/predictions/<lang>.json`` by :func:`xstilts.report.export_predictions`.
        ``seed``: the target seed of a target or eval phase (None for the others).
        """
        now = _now()
        self._write(lambda con: con.execute(
            """INSERT INTO phases (run_id, phase_key, kind, seed, status, config, wall_s, s_per_epoch,
                                   examples_per_s, tokens_per_s, peak_mem_mb, path, xstilts_version, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (run_id, phase_key) DO UPDATE SET kind = excluded.kind, seed = excluded.seed,
                   status = excluded.status,
                   config = excluded.config, wall_s = excluded.wall_s, s_per_epoch = excluded.s_per_epoch,
                   examples_per_s = excluded.examples_per_s, tokens_per_s = excluded.tokens_per_s,
                   peak_mem_mb = excluded.peak_mem_mb, path = excluded.path,
                   xstilts_version = excluded.xstilts_version, updated = excluded.updated""",
            (run_id, phase_key, kind, None if seed is None else int(seed), status, _json(config), _num(wall_s),
             _num(s_per_epoch), _num(examples_per_s),
             _num(tokens_per_s), _num(peak_mem_mb), None if path is None else str(path), __version__, now, now)))

    def add_metrics(self, run_id: str, phase_key: str | None, rows: Iterable[Mapping], *,
                    seed: int | None = None) -> int:
        """Upsert metric rows (dicts with task, lang, split, metric, value, n; extra keys ignored).

        A row is keyed by run, seed, task, language, split and metric: each seed of a run keeps
        its rows. The seed is the row's ``seed`` key if not None, else ``seed``, else the run's seed;
        pass :data:`NO_SEED` for a seedless row in a run that has a seed.

        Returns:
            The number of rows written.
        """
        now = _now()
        params = [(run_id, _seed(seed if r.get("seed") is None else r["seed"]), run_id, r["task"], r["lang"],
                   r["split"], r["metric"], phase_key,
                   float(r["value"]), None if r.get("n") is None else int(r["n"]), __version__, now, now)
                  for r in rows]

        def write(con):
            con.executemany(
                f"""INSERT INTO metrics (run_id, seed, task, lang, split, metric, phase_key, value, n,
                                        xstilts_version, created, updated)
                   VALUES (?, {_RUN_SEED}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id, seed, task, lang, split, metric) DO UPDATE SET phase_key = excluded.phase_key,
                       value = excluded.value, n = excluded.n, xstilts_version = excluded.xstilts_version,
                       updated = excluded.updated""", params)
            return len(params)

        return self._write(write)

    def add_example_scores(self, run_id: str, task: str, lang: str, split: str, metric: str,
                           scores: np.ndarray, *, seed: int | None = None, phase_key: str | None = None) -> None:
        """Store per-example scores (1/0 correctness, per-example F1...) for the paired bootstrap.

        The scores must be in the evaluation set's example order, the same
        for every run, so runs can be paired example by example. Keyed like
        metric rows (run, seed, task, language, split, metric).
        """
        arr = np.ascontiguousarray(np.asarray(scores, dtype="<f4").ravel())
        now = _now()
        self._write(lambda con: con.execute(
            f"""INSERT INTO example_scores (run_id, seed, task, lang, split, metric, phase_key, n, scores,
                                            xstilts_version, created, updated)
               VALUES (?, {_RUN_SEED}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (run_id, seed, task, lang, split, metric) DO UPDATE SET n = excluded.n,
                   phase_key = excluded.phase_key, scores = excluded.scores,
                   xstilts_version = excluded.xstilts_version, updated = excluded.updated""",
            (run_id, _seed(seed), run_id, task, lang, split, metric, phase_key, int(arr.size), arr.tobytes(),
             __version__,
             now, now)))

    def add_environment(self, run_id: str, info: dict) -> None:
        """Record the environment of a run (see :func:`environment_info`)."""
        packages = info.get("packages") or {}
        now = _now()
        self._write(lambda con: con.execute(
            """INSERT INTO environment (run_id, python, platform, xstilts_version, torch, transformers, gpu, git_rev,
                                        info, created, updated)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (run_id) DO UPDATE SET python = excluded.python, platform = excluded.platform,
                   xstilts_version = excluded.xstilts_version, torch = excluded.torch,
                   transformers = excluded.transformers, gpu = excluded.gpu, git_rev = excluded.git_rev,
                   info = excluded.info, updated = excluded.updated""",
            (run_id, info.get("python"), info.get("platform"), packages.get("xstilts", __version__),
             packages.get("torch"), packages.get("transformers"), info.get("gpu"), info.get("git_rev"),
             _json(info), now, now)))

    # ------------------------------------------------------------ reads

    def done_runs(self) -> set[str]:
        """Ids of runs with at least one metric row."""
        return set(self._read("SELECT DISTINCT run_id FROM metrics")["run_id"])

    def query(self, sql: str, params: Iterable = ()) -> pd.DataFrame:
        """Run a read-only SQL query and return the result as a DataFrame."""
        return self._read(sql, params)

    def metrics_frame(self) -> pd.DataFrame:
        """All metric rows joined with their run.

        Columns: run_id, model, setting, target, seed, task, lang, split,
        metric, value, n (seed is a nullable integer).
        """
        df = self._read(
            f"""SELECT m.run_id, r.model, r.setting, r.target, NULLIF(m.seed, {NO_SEED}) AS seed, m.task, m.lang,
                       m.split, m.metric, m.value, m.n
                FROM metrics m JOIN runs r ON r.run_id = m.run_id
                ORDER BY m.run_id, m.seed, m.task, m.split, m.lang, m.metric""")
        return _typed(df)

    def records_frame(self) -> pd.DataFrame:
        """:meth:`metrics_frame` plus provenance: phase_key, config_hash, xstilts_version (metric's), created."""
        df = self._read(
            f"""SELECT m.run_id, r.model, r.setting, r.target, NULLIF(m.seed, {NO_SEED}) AS seed, m.task, m.lang,
                       m.split, m.metric, m.value, m.n, m.phase_key, r.config_hash, m.xstilts_version, m.created
                FROM metrics m JOIN runs r ON r.run_id = m.run_id
                ORDER BY m.run_id, m.seed, m.task, m.split, m.lang, m.metric""")
        return _typed(df)

    def timings_frame(self) -> pd.DataFrame:
        """Phases joined with their run: columns :data:`TIMING_COLUMNS`."""
        df = self._read(
            """SELECT p.run_id, r.model, r.setting, r.target, COALESCE(p.seed, r.seed) AS seed, p.phase_key,
                      p.kind, p.status, p.wall_s,
                      p.s_per_epoch, p.examples_per_s, p.tokens_per_s, p.peak_mem_mb, p.path
               FROM phases p LEFT JOIN runs r ON r.run_id = p.run_id
               ORDER BY p.run_id, p.created, p.phase_key""")
        return _typed(df)

    def runs_frame(self) -> pd.DataFrame:
        """The runs table (config and labels as JSON strings)."""
        return _typed(self._read("SELECT * FROM runs ORDER BY run_id"))

    def environment_frame(self) -> pd.DataFrame:
        return self._read("SELECT * FROM environment ORDER BY run_id")

    def example_scores(self, task: str | None = None, split: str | None = None) -> pd.DataFrame:
        """Per-example scores joined with their run; column ``scores`` holds float32 arrays."""
        where, params = [], []
        for col, val in (("e.task", task), ("e.split", split)):
            if val is not None:
                where.append(f"{col} = ?")
                params.append(val)
        df = self._read(
            f"""SELECT e.run_id, r.model, r.setting, r.target, NULLIF(e.seed, {NO_SEED}) AS seed, e.task, e.lang,
                       e.split, e.metric, e.n, e.scores
                FROM example_scores e JOIN runs r ON r.run_id = e.run_id
                {"WHERE " + " AND ".join(where) if where else ""}
                ORDER BY e.run_id, e.seed, e.task, e.lang""", params)
        df["scores"] = [np.frombuffer(b, dtype="<f4") for b in df["scores"]]
        return _typed(df)

    def export(self, path: str | os.PathLike, table: str = "metrics") -> Path:
        """Write a frame to CSV (``.csv``) or Parquet (``.parquet``/``.pq``), chosen by extension.

        Args:
            path: output file.
            table: ``"metrics"`` (:meth:`metrics_frame`, default), ``"records"``
                (metrics with provenance), ``"timings"``, ``"runs"`` or ``"environment"``.

        Returns:
            The written path.
        """
        frames = {"metrics": self.metrics_frame, "records": self.records_frame, "timings": self.timings_frame,
                  "runs": self.runs_frame, "environment": self.environment_frame}
        if table not in frames:
            raise ValueError(f"export: unknown table {table!r}; expected one of {sorted(frames)}")
        path = Path(path)
        df = frames[table]()
        suffix = path.suffix.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            df.to_csv(path, index=False)
        elif suffix in (".parquet", ".pq"):
            df.to_parquet(path, index=False)
        else:
            raise ValueError(f"export: {path.name}: use a .csv or .parquet extension")
        return path


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    if "seed" in df:
        df["seed"] = df["seed"].astype("Int64")
    if "n" in df:
        df["n"] = df["n"].astype("Int64")
    return df


def read_export(path: str | os.PathLike) -> pd.DataFrame:
    """Read a file written by :meth:`Store.export` back with the same dtypes."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        # keep_default_na=False: a language code such as "NA" stays a string
        return _typed(pd.read_csv(path, keep_default_na=False, na_values=[""]))
    return _typed(pd.read_parquet(path))


# --------------------------------------------------------------------------- environment


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


def _gpu_name() -> str | None:
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    except Exception:
        pass
    return None


def _git_rev(cwd: str | os.PathLike | None = None) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        rev = out.stdout.strip()
        if out.returncode != 0 or not rev:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return rev + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")
    except Exception:
        return None


def environment_info(cwd: str | os.PathLike | None = None) -> dict:
    """Versions and hardware of this process, for :meth:`Store.add_environment`.

    Returns:
        ``{"python", "platform", "cpu_count", "gpu", "git_rev", "packages"}``;
        ``packages`` maps torch, transformers, accelerate, datasets, xstilts
        to their versions (None when not installed); ``gpu`` is the first CUDA
        device's name or None (only looked up when torch is already imported
        or importable); ``git_rev`` is ``git rev-parse HEAD`` of ``cwd`` (with
        ``+dirty`` when tracked files changed) or None.
    """
    packages = {name: _version(name) for name in ("torch", "transformers", "accelerate", "datasets")}
    packages["xstilts"] = __version__
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "gpu": _gpu_name(),
        "git_rev": _git_rev(cwd),
        "packages": packages,
    }
