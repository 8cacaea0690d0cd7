"""Grids: expansion, dry-run plan, Ray execution with shared intermediate phases, kill + rerun completeness."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import yaml

from conftest import TOY_TASKS
from xstilts import grid
from xstilts.cli import main

FAST = {"lr": 3e-3, "batch_size": 16, "max_steps": 6, "eval_every": 6, "max_length": 32}


def grid_file(tmp_path, tiny_model, toy_data, seeds=(0, 1)):
    cfg = {
        "base": {"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / "work"),
                 "tasks": TOY_TASKS + [{**TOY_TASKS[1], "name": "toy_topic2"}],
                 "intermediate": {"train": FAST}, "target": {"train": FAST}, "eval": {"languages": ["en", "de"]}},
        "settings": [{"name": "none"}, {"name": "pair", "tasks": ["toy_pair"]}],
        "targets": ["toy_topic", "toy_topic2"],
        "seeds": list(seeds),
    }
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_dry_run_counts_shared_phases_and_naive_cost(tmp_path, tiny_model, toy_data, capsys):
    path = grid_file(tmp_path, tiny_model, toy_data)
    cells = grid.expand(grid.load(path))
    assert len(cells) == 8  # 2 settings x 2 targets x 2 seeds
    p = grid.plan(cells)
    # Training FLOPs of one phase, as documented: 6 x parameters x tokens, with the parameter estimate
    # layers x (4 h^2 attention + 2 h ffn) + vocab x h and tokens = steps x batch x max_length x 0.6 (padding).
    c = json.loads((tiny_model / "config.json").read_text())
    h, ffn = c["hidden_size"], c["intermediate_size"]
    phase = 6 * (c["num_hidden_layers"] * (4 * h * h + 2 * h * ffn) + c["vocab_size"] * h) * (6 * 16 * 32 * 0.6)
    # one intermediate phase (setting "pair") shared by 4 cells; 8 target and 8 eval phases (evaluation: 0 FLOPs)
    assert p["phases"]["intermediate"] == {"total": 1, "done": 0, "flops": pytest.approx(phase)}
    assert p["phases"]["target"] == {"total": 8, "done": 0, "flops": pytest.approx(8 * phase)}
    assert p["phases"]["eval"] == {"total": 8, "done": 0, "flops": 0.0}
    assert p["flops"] == pytest.approx(9 * phase)
    assert p["flops_naive"] == pytest.approx(12 * phase)  # without reuse the 4 "pair" cells train it 4 times
    assert main(["grid", str(path), "--dry-run"]) == 0
    assert "without reuse" in capsys.readouterr().out


def test_ray_grid_trains_each_intermediate_once_and_fills_the_store(tmp_path, tiny_model, toy_data):
    import ray

    path = grid_file(tmp_path, tiny_model, toy_data)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        out = grid.run_grid(grid.load(path), executor="ray", log=lambda m: None)
    finally:
        ray.shutdown()
    assert not out["failed"] and len(out["done"]) == 8
    phases = list((tmp_path / "work" / "phases").glob("intermediate-*"))
    assert len(phases) == 1  # trained once, reused by 4 cells
    db = sqlite3.connect(tmp_path / "work" / "results.sqlite")
    # 8 cells x 2 languages x 1 metric (accuracy)
    assert db.execute("select count(*) from metrics where metric='accuracy' and split='test'").fetchone()[0] == 16
    assert db.execute("select count(distinct run_id) from runs").fetchone()[0] == 8
    # the 4 cells of setting "pair" all point at the same intermediate phase, trained by its own Ray task
    rows = db.execute("select count(*), count(distinct phase_key) from phases where kind='intermediate'").fetchone()
    assert rows == (4, 1)


def test_killed_grid_rerun_completes_without_duplicates(tmp_path, tiny_model, toy_data):
    path = grid_file(tmp_path, tiny_model, toy_data, seeds=(0, 1, 2))
    proc = subprocess.Popen([sys.executable, "-m", "xstilts.cli", "grid", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db_path = tmp_path / "work" / "results.sqlite"
    deadline = time.time() + 300
    count = 0
    while proc.poll() is None and time.time() < deadline:
        if db_path.exists():
            try:
                count = sqlite3.connect(db_path).execute("select count(distinct run_id) from metrics").fetchone()[0]
            except sqlite3.OperationalError:
                count = 0
            if count >= 3:
                break
        time.sleep(0.1)
    assert proc.poll() is None, "grid finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main(["grid", str(path)]) == 0
    db = sqlite3.connect(db_path)
    assert db.execute("select count(distinct run_id) from metrics").fetchone()[0] == 12
    dup = db.execute("select count(*) from (select run_id, task, lang, split, metric, count(*) c from metrics "
                     "group by 1,2,3,4,5 having c > 1)").fetchone()[0]
    assert dup == 0
    assert db.execute("select count(*) from metrics where metric='accuracy' and split='test'").fetchone()[0] == 24
    # English dev rows (for the paper's selection) come with every cell
    assert db.execute("select count(*) from metrics where split='dev' and lang='en'").fetchone()[0] == 12
    # each intermediate phase directory trained once
    assert len(list((tmp_path / "work" / "phases").glob("intermediate-*"))) == 1
    # the report renders from the store alone, with the paper's English-dev selection filled in
    assert main(["report", "--workdir", str(tmp_path / "work")]) == 0
    md = (tmp_path / "work" / "report" / "report.md").read_text()
    assert "| pair |" in md and "n/a (no dev scores)" not in md


def test_run_and_grid_give_the_same_config_the_same_run_id(tmp_path, tiny_model, toy_data, capsys):
    """One cell run by the grid, then the same config by `xstilts run`: one run in the store, not two."""
    path = grid_file(tmp_path, tiny_model, toy_data, seeds=(0,))
    g = grid.load(path)
    g = g.model_copy(update={"settings": g.settings[:1], "targets": ["toy_topic"]})
    (cell,) = grid.expand(g)
    assert grid.run_grid(g, log=lambda m: None) == {"done": [cell.run_id], "failed": {}}
    run_yaml = tmp_path / "run.yaml"
    run_yaml.write_text(yaml.safe_dump(cell.cfg.model_dump()))
    assert main(["run", str(run_yaml)]) == 0
    assert f"run {cell.run_id} recorded" in capsys.readouterr().out
    con = sqlite3.connect(tmp_path / "work" / "results.sqlite")
    try:
        assert con.execute("SELECT run_id, config_hash FROM runs").fetchall() == [(cell.run_id, cell.run_id)]
    finally:
        con.close()
