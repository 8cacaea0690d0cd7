"""Forecasting intermediate tasks (xstilts.forecast): LogME, selection measures, the forecast command and
its evaluation against a grid's store."""

from __future__ import annotations

import itertools
import json
import math
import shutil

import numpy as np
import pytest
import yaml

from conftest import TOY_TASKS, WORDS, write_jsonl
from xstilts.forecast.evaluate import (evaluate_grid, gain_share, measures, ndcg_at_k, random_expectation,
                                       ranking, regret_at_k, spearman)
from xstilts.forecast.logme import logme

# ---------------------------------------------------------------------------- LogME


@pytest.mark.unit
def test_logme_on_a_case_worked_by_hand():
    # F = [[1], [-1]], y = [3, -1]. The evidence is log N(y; 0, C) with C = I / beta + F F^T / alpha. y splits
    # into its parts along e = (1, -1)/sqrt2 (eigenvalue of C: 1/beta + 2/alpha, y.e = 4/sqrt2) and
    # f = (1, 1)/sqrt2 (eigenvalue 1/beta, y.f = 2/sqrt2): log p = -log 2pi - 1/2 log l1 - 8/(2 l1)
    # - 1/2 log l2 - 2/(2 l2), maximal at l1 = 8, l2 = 2, i.e. beta = 1/2 and alpha = 1/3, where
    # log p = -log 2pi - 1/2 log 16 - 1. LogME divides by n = 2.
    score, (col,) = logme(np.array([[1.0], [-1.0]]), np.array([3.0, -1.0]), regression=True, details=True)
    assert col["alpha"] == pytest.approx(1 / 3, rel=1e-6)
    assert col["beta"] == pytest.approx(1 / 2, rel=1e-6)
    assert score == pytest.approx((-math.log(2 * math.pi) - math.log(4) - 1) / 2, abs=1e-12)


def _max_log_marginal(f, y):
    """max over alpha, beta of log N(y; 0, I/beta + F F^T / alpha), by scipy: an independent route."""
    from scipy.optimize import minimize
    from scipy.stats import multivariate_normal

    def neg(p):
        a, b = np.exp(p)
        return -multivariate_normal(mean=np.zeros(len(y)), cov=np.eye(len(y)) / b + f @ f.T / a).logpdf(y)

    best = min((minimize(neg, x0, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
                for x0 in ([0.0, 0.0], [2.0, -1.0], [-2.0, 1.0])), key=lambda r: r.fun)
    return -best.fun / len(y)


@pytest.mark.unit
@pytest.mark.parametrize("n,d", [(30, 5), (6, 10)])  # more examples than dimensions, and fewer
def test_logme_is_the_maximum_of_the_marginal_likelihood(n, d):
    rng = np.random.default_rng(n)
    f = rng.normal(size=(n, d))
    y_reg = f @ rng.normal(size=d) + rng.normal(scale=0.5, size=n)
    assert logme(f, y_reg, regression=True) == pytest.approx(_max_log_marginal(f, y_reg), abs=1e-6)
    # classification: the mean over the one-hot columns of the classes present
    labels = rng.integers(0, 3, size=n)
    expect = np.mean([_max_log_marginal(f, (labels == k).astype(float)) for k in np.unique(labels)])
    assert logme(f, labels) == pytest.approx(expect, abs=1e-6)


@pytest.mark.unit
def test_logme_prefers_features_that_carry_the_labels():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=200)
    noise = rng.normal(size=(200, 8))
    informative = noise.copy()
    informative[:, 0] += 3 * labels
    assert logme(informative, labels) > logme(noise, labels) + 0.1
    with pytest.raises(ValueError, match="two classes"):
        logme(noise, np.zeros(200, dtype=int))
    with pytest.raises(ValueError, match="labels"):
        logme(noise, labels[:10])


# ---------------------------------------------------------------------------- selection measures

TRUE = {"none": 0.50, "a": 0.55, "b": 0.52, "c": 0.48}


@pytest.mark.unit
def test_measures_on_a_hand_made_grid():
    # forecast ranks c, b, a, none: the worst pick
    m = measures(TRUE, {"none": 0, "a": 1, "b": 2, "c": 3})
    assert m["pick"] == "c"
    assert m["regret@1"] == pytest.approx(0.07)  # 0.55 - 0.48
    assert m["regret@3"] == pytest.approx(0.0)  # a is third
    assert m["share"] == pytest.approx(-0.4)  # (0.48 - 0.50) / (0.55 - 0.50)
    assert m["beats_none"] == 0.0
    # relevance = score - 0.48: none .02, a .07, b .04, c 0; DCG@3 of (c, b, a) = 0 + .04/log2(3) + .07/2,
    # ideal (a, b, none) = .07 + .04/log2(3) + .02/2
    assert m["ndcg@3"] == pytest.approx((0.04 / math.log2(3) + 0.035) / (0.07 + 0.04 / math.log2(3) + 0.01))
    assert m["spearman"] == pytest.approx(-0.4)  # worked out in test_spearman_hand_value
    # the perfect forecast
    p = measures(TRUE, dict(TRUE))
    assert (p["pick"], p["regret@1"], p["share"], p["beats_none"], p["ndcg@3"], p["spearman"]) == ("a", 0, 1, 1, 1, 1)
    # ties keep the listed order; unscored candidates go last
    assert ranking({"x": 1.0, "y": 1.0, "z": None, "w": 2.0}) == ["w", "x", "y", "z"]
    assert regret_at_k(TRUE, ["b", "none"], 1) == pytest.approx(0.03)
    assert gain_share({"none": 0.5, "a": 0.4}, "a") is None  # nothing beats none: no gain to share
    assert ndcg_at_k({"a": 1.0, "b": 1.0}, ["a", "b"], 3) == 1.0
    assert spearman(TRUE, {"a": 1.0, "b": 1.0}) is None  # fewer than 3 scored candidates


@pytest.mark.unit
def test_spearman_hand_value():
    # true ranks (1 = best): a 1, b 2, none 3, c 4; forecast ranks: c 1, b 2, a 3, none 4.
    # d = (a: 1-3, b: 0, none: 3-4, c: 4-1) -> sum d^2 = 4 + 0 + 1 + 9 = 14; rho = 1 - 6*14 / (4*15) = -0.4
    assert spearman(TRUE, {"none": 0, "a": 1, "b": 2, "c": 3}) == pytest.approx(1 - 6 * 14 / 60)


@pytest.mark.unit
def test_random_expectation_equals_the_average_over_all_orderings():
    perms = list(itertools.permutations(TRUE))
    every = [measures(TRUE, {c: -i for i, c in enumerate(p)}) for p in perms]
    exp = random_expectation(TRUE)
    for m in ("regret@1", "regret@3", "share", "beats_none", "ndcg@3"):
        assert exp[m] == pytest.approx(np.mean([e[m] for e in every]), abs=1e-12), m
    assert exp["regret@1"] == pytest.approx(0.55 - np.mean(list(TRUE.values())))
    assert np.mean([e["spearman"] for e in every]) == pytest.approx(exp["spearman"], abs=1e-12)


@pytest.mark.unit
def test_evaluate_grid_reads_per_seed_numbers_through_the_resample():
    # two seeds; the English dev rule picks "a" on both (its dev is best), "a" is also the oracle
    grid = {"none": {0: {"zero_shot": 0.50, "en_dev": 0.80}, 1: {"zero_shot": 0.52, "en_dev": 0.81}},
            "a": {0: {"zero_shot": 0.56, "en_dev": 0.85}, 1: {"zero_shot": 0.54, "en_dev": 0.84}},
            "b": {0: {"zero_shot": 0.51, "en_dev": 0.82}, 1: {"zero_shot": 0.53, "en_dev": 0.83}}}
    seen = []

    def en_dev(g, seeds):
        seen.append(list(seeds))
        return {c: float(np.mean([g[c][s]["en_dev"] for s in seeds])) for c in g}

    r = evaluate_grid(grid, {"en-dev": en_dev, "worst": lambda g, s: {"b": 1.0, "none": 0.5, "a": 0.0}},
                      n_resamples=50, seed=1)
    assert r["oracle"] == "a" and r["true"]["a"] == pytest.approx(0.55)
    dev = r["selectors"]["en-dev"]
    assert dev["pick"] == "a" and dev["regret@1"]["value"] == 0 and dev["share"]["value"] == 1
    assert len(seen) == 51 and any(s == [0, 0] or s == [1, 1] for s in seen[1:])  # the resampled seed sets
    worst = r["selectors"]["worst"]
    assert worst["regret@1"]["value"] == pytest.approx(0.55 - 0.52)
    assert worst["regret@1"]["low"] <= worst["regret@1"]["value"] <= worst["regret@1"]["high"]
    assert r["selectors"]["random"]["regret@1"]["value"] == pytest.approx(0.55 - np.mean([0.51, 0.55, 0.52]))


# ---------------------------------------------------------------------------- the command, on a tiny grid

FAST = {"lr": 3e-3, "batch_size": 16, "max_steps": 6, "eval_every": 6, "max_length": 32}
CANDIDATES = ["toy_pair", "toy_topic2"]


def _base(tiny_model, data, work) -> dict:
    return {"model": str(tiny_model), "data_dir": str(data), "workdir": str(work),
            "tasks": TOY_TASKS + [{**TOY_TASKS[1], "name": "toy_topic2"}],
            "intermediate": {"train": FAST}, "target": {"train": FAST}, "eval": {"languages": ["en", "de", "fr"]}}


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory, tiny_model, toy_data):
    """A grid on the tiny model: none / toy_pair / toy_topic2 -> toy_topic, seeds 0 and 1."""
    from xstilts.cli import main

    root = tmp_path_factory.mktemp("forecast_grid")
    base = _base(tiny_model, toy_data, root / "work")
    (root / "run.yaml").write_text(yaml.safe_dump(base))
    (root / "grid.yaml").write_text(yaml.safe_dump({
        "base": base, "settings": [{"name": "none"}] + [{"name": c, "tasks": [c]} for c in CANDIDATES],
        "targets": ["toy_topic"], "seeds": [0, 1]}))
    assert main(["grid", str(root / "grid.yaml"), "--quiet"]) == 0
    return root


def test_forecast_ranks_candidates_and_reuses_the_grids_intermediate_phases(tiny_grid, capsys):
    from xstilts.cli import main

    assert main(["forecast", "toy_topic", "--candidates", ",".join(CANDIDATES), "--config",
                 str(tiny_grid / "run.yaml"), "--examples", "32"]) == 0
    out = capsys.readouterr().out
    saved = json.loads((tiny_grid / "work" / "forecasts" / "model__toy_topic.json").read_text())
    sel = saved["selectors"]
    assert set(sel) == {"embedding-en", "embedding-xx", "logme", "en-dev-short", "largest-first"}
    # similarity selectors cannot score "none"; LogME scores it on the base encoder and every candidate on its
    # intermediate phase's encoder (trained by the grid: nothing "needs training")
    assert sel["embedding-en"]["scores"]["none"] is None
    assert all(-1 <= sel["embedding-en"]["scores"][c] <= 1 for c in CANDIDATES)
    assert all(isinstance(sel["logme"]["scores"][c], float) for c in ["none"] + CANDIDATES)
    assert len(set(sel["logme"]["scores"].values())) == 3  # three different encoders
    assert "needs training" not in sel["logme"]["notes"]
    assert sel["largest-first"]["scores"] == {"none": 0.0, "toy_pair": 96.0, "toy_topic2": 64.0}
    # toy_topic2 is the target's own data under another name: identical English text
    assert sel["embedding-en"]["scores"]["toy_topic2"] == pytest.approx(1.0)
    assert "logme" in out and "largest-first" in out
    # en-dev-short: one short fine-tune per candidate (1/4 of the 6 steps, rounded: 2) on the grid's intermediate
    # encoders, scored on English dev; those phases keep done.json only
    short = {}
    for d in (tiny_grid / "work" / "phases").glob("target-*"):
        c = json.loads((d / "config.json").read_text())
        if c["config"].get("keep_weights") is False:
            short[c["input"]] = json.loads((d / "done.json").read_text())
            assert sorted(x.name for x in d.iterdir()) == ["config.json", "done.json"]
    assert len(short) == 3 and all(s["steps"] == 2 for s in short.values())
    scores = sel["en-dev-short"]["scores"]
    assert sorted(scores.values()) == sorted(s["best_dev"] for s in short.values())
    assert all(0 <= scores[c] <= 1 for c in ["none"] + CANDIDATES)
    assert "2 steps fine-tune" in sel["en-dev-short"]["notes"]

    # --evaluate: the grid's store, the English dev rule, largest-first, random and the saved forecast
    capsys.readouterr()
    assert main(["forecast", "--evaluate", "--store", str(tiny_grid / "work" / "results.sqlite"), "--forecasts",
                 str(tiny_grid / "work" / "forecasts"), "--resamples", "50",
                 "--json", str(tiny_grid / "eval.json")]) == 0
    text = capsys.readouterr().out
    ev = json.loads((tiny_grid / "eval.json").read_text())
    (key, r), = ev.items()
    assert key.endswith("/ toy_topic") and r["seeds"] == [0, 1]
    assert set(r["selectors"]) == {"en-dev", "largest-first", "random", "embedding-en", "embedding-xx", "logme",
                                   "en-dev-short"}
    for name, s in r["selectors"].items():
        assert 0 <= s["regret@1"]["value"] <= max(r["true"].values()) - min(r["true"].values()) + 1e-12, name
    assert r["selectors"]["largest-first"]["pick"] == "toy_pair"
    assert "regret@1" in text and "en-dev" in text


def test_no_selector_reads_target_language_labels(tmp_path, tiny_model, toy_data):
    """The same forecast with every target-language label flipped: every score is unchanged. (The
    target's English training labels are what LogME is allowed to read.)"""
    from xstilts.config import load
    from xstilts.forecast import select

    flipped = tmp_path / "flipped"
    shutil.copytree(toy_data, flipped)
    for lang in WORDS:
        if lang == "en":
            continue
        for split in ("dev", "test"):
            f = flipped / "topic" / f"{split}-{lang}.jsonl"
            rows = [json.loads(x) for x in f.read_text().splitlines()]
            write_jsonl(f, [{**r, "label": "food" if r["label"] == "animal" else "animal"} for r in rows])
    seen = []
    real_embedding = select.dataset_embedding

    def spy(encoder, texts, pad_id, batch_size=32):
        seen.append(texts)
        return real_embedding(encoder, texts, pad_id, batch_size)

    results = []
    for data in (toy_data, flipped):
        cfg = load(None, [f"{k}={json.dumps(v)}" for k, v in _base(tiny_model, data, tmp_path / data.name).items()])
        select.dataset_embedding = spy
        try:
            results.append(select.forecast(cfg, "toy_topic", CANDIDATES, examples=32))
        finally:
            select.dataset_embedding = real_embedding
    a, b = ({n: s["scores"] for n, s in r["selectors"].items()} for r in results)
    assert a == b
    # what the similarity selectors receive: token id lists only
    assert seen and all(isinstance(t, list) and all(isinstance(i, int) for i in t) for texts in seen for t in texts)


def test_forecast_command_errors_name_the_problem(tmp_path, capsys):
    from xstilts.cli import main

    assert main(["forecast"]) == 2
    assert "name a TARGET and --candidates" in capsys.readouterr().err
    assert main(["forecast", "toy_topic", "--candidates", "toy_pair", "--selectors", "logme,oracle"]) == 2
    assert "unknown selector(s) oracle; known: embedding-en" in capsys.readouterr().err
    assert main(["forecast", "--evaluate", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no results store at" in capsys.readouterr().err
    bad = tmp_path / "fc"
    bad.mkdir()
    (bad / "x.json").write_text("{}")
    (tmp_path / "s.sqlite").write_text("")
    assert main(["forecast", "--evaluate", "--store", str(tmp_path / "s.sqlite"), "--forecasts", str(bad)]) == 2
    assert "x.json: not a forecast written by `xstilts forecast`" in capsys.readouterr().err



@pytest.mark.unit
def test_percentile_interval_on_hand_values():
    from xstilts.stats import percentile_interval

    # numpy's linear quantiles of 0..4: 25 % -> 1.0, 75 % -> 3.0; None and nan draws are dropped
    assert percentile_interval(2.0, [0, 1, 2, 3, 4, None, float("nan")], alpha=0.5) == {"value": 2.0, "low": 1.0, "high": 3.0}
    assert percentile_interval(None, [1, 2]) == {"value": None, "low": None, "high": None}
    assert percentile_interval(1.0, [1]) == {"value": 1.0, "low": None, "high": None}


def test_grids_from_store_reads_only_the_given_runs(tiny_grid):
    """A study's cells only: runs of an earlier config of the same grid (same setting names) stay out."""
    from xstilts.forecast.evaluate import grids_from_store
    from xstilts.store import Store

    store = Store(tiny_grid / "work" / "results.sqlite")
    mf = store.metrics_frame()
    everything = grids_from_store(store)
    (key, sl), = everything.items()
    assert all(sorted(v) == [0, 1] for v in sl["grid"].values())
    seed0 = sorted(set(mf[mf["seed"] == 0]["run_id"]))
    (key0, sl0), = grids_from_store(store, run_ids=seed0).items()
    assert key0 == key and all(sorted(v) == [0] for v in sl0["grid"].values())
    assert {c: v[0] for c, v in sl0["grid"].items()} == {c: v[0] for c, v in sl["grid"].items()}
