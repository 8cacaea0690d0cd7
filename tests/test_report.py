"""Reports from a hand-made store: table numbers, bootstrap, selection, rendering, prediction export."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import skip_missing
from xstilts.errors import ConfigError
from xstilts.tasks.benchmarks import xtreme_score
from xstilts.report import build_report, export_predictions, format_rows, paired_bootstrap, summarize
from xstilts.store import Store

SETTINGS = ("none", "siqa", "mnli")
SEEDS = (0, 1, 2)
LANGS = ("en", "de", "fr")
N_EX = 200  # examples per language (xnli, which has per-example scores)


def _make_data():
    """value[(setting, target, seed, lang)] and xnli per-example correctness.

    siqa: a large consistent gain on both targets; mnli: zero-mean noise
    (xnli: the same accuracy as the baseline with the errors moved around;
    xquad: noise centred per language, so its mean delta is exactly 0).
    """
    rng = np.random.default_rng(123)
    values, examples = {}, {}
    for seed in SEEDS:
        for li, lang in enumerate(LANGS):
            base = (rng.random(N_EX) < 0.55 + 0.05 * li).astype(np.float32)
            wrong, right = np.flatnonzero(base == 0), np.flatnonzero(base == 1)
            siqa = base.copy()
            siqa[wrong[:25]] = 1  # +12.5 points, the same errors fixed in every run
            mnli = base.copy()
            k = 15
            mnli[rng.choice(wrong, k, replace=False)] = 1
            mnli[rng.choice(right, k, replace=False)] = 0
            for s, arr in zip(SETTINGS, (base, siqa, mnli)):
                examples[(s, seed, lang)] = arr
                values[(s, "xnli", seed, lang)] = float(arr.mean())
    noise = rng.normal(0, 0.01, size=(len(SEEDS), len(LANGS)))
    noise -= noise.mean(axis=0)  # zero mean over seeds, per language
    for ki, seed in enumerate(SEEDS):
        for li, lang in enumerate(LANGS):
            b = 0.6 + 0.03 * li + 0.01 * ki
            values[("none", "xquad", seed, lang)] = b
            values[("siqa", "xquad", seed, lang)] = b + 0.05 + 0.004 * ((ki + li) % 3 - 1)
            values[("mnli", "xquad", seed, lang)] = b + float(noise[ki, li])
    return values, examples


VALUES, EXAMPLES = _make_data()
# English dev: mnli best for xnli (although siqa is best on test), siqa best for xquad
DEV_EN = {("siqa", "xnli"): 0.80, ("mnli", "xnli"): 0.85, ("none", "xnli"): 0.70,
          ("siqa", "xquad"): 0.70, ("mnli", "xquad"): 0.60, ("none", "xquad"): 0.50}
# target-language dev (de, fr): siqa best for xnli
DEV_XX = {("siqa", "xnli"): 0.75, ("mnli", "xnli"): 0.65, ("none", "xnli"): 0.60,
          ("siqa", "xquad"): 0.55, ("mnli", "xquad"): 0.50, ("none", "xquad"): 0.45}


def _fill(store: Store, with_phases_dir=None):
    for setting in SETTINGS:
        for target in ("xnli", "xquad"):
            for seed in SEEDS:
                run = f"{setting}-{target}-{seed}"
                store.add_run(run, config={"setting": setting, "target": target, "seed": seed},
                              config_hash=f"h-{run}", model="xlmr-tiny", setting=setting, target=target, seed=seed)
                rows = []
                for lang in LANGS:
                    v = VALUES[(setting, target, seed, lang)]
                    rows.append({"task": target, "lang": lang, "split": "test",
                                 "metric": "accuracy" if target == "xnli" else "f1", "value": v, "n": N_EX})
                    if target == "xquad":  # a second metric the report must not pick
                        rows.append({"task": target, "lang": lang, "split": "test", "metric": "exact_match",
                                     "value": v - 0.1, "n": N_EX})
                    dev = DEV_EN if lang == "en" else DEV_XX
                    rows.append({"task": target, "lang": lang, "split": "dev",
                                 "metric": "accuracy" if target == "xnli" else "f1",
                                 "value": dev[(setting, target)] + 0.001 * seed, "n": 50})
                store.add_metrics(run, f"eval-{run}", rows)
                if target == "xnli":
                    for lang in LANGS:
                        store.add_example_scores(run, "xnli", lang, "test", "accuracy",
                                                 EXAMPLES[(setting, seed, lang)])
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return _fill(Store(tmp_path_factory.mktemp("store") / "results.sqlite"))


@pytest.fixture(scope="module")
def summary(store):
    return summarize(store)


def _cell(summary, setting, target):
    return next(c for c in summary["table"] if c["setting"] == setting and c["target"] == target)


def _hand(setting, target):
    per_seed = np.array([np.mean([VALUES[(setting, target, k, lang)] for lang in LANGS]) for k in SEEDS])
    base = np.array([np.mean([VALUES[("none", target, k, lang)] for lang in LANGS]) for k in SEEDS])
    return per_seed, per_seed - base


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("target", ["xnli", "xquad"])
def test_table_numbers_match_hand_computation(summary, setting, target):
    c = _cell(summary, setting, target)
    per_seed, delta = _hand(setting, target)
    assert c["metric"] == ("accuracy" if target == "xnli" else "f1")
    assert c["split"] == "test" and c["n_seeds"] == 3 and c["n_languages"] == 3
    assert c["mean"] == pytest.approx(per_seed.mean(), abs=1e-12)
    assert c["std"] == pytest.approx(per_seed.std(ddof=1), abs=1e-12)
    if setting == "none":
        assert c["delta_mean"] is None and c["p_value"] is None
    else:
        assert c["delta_mean"] == pytest.approx(delta.mean(), abs=1e-12)
        assert c["delta_std"] == pytest.approx(delta.std(ddof=1), abs=1e-12)
        assert c["bootstrap_unit"] == ("seeds+examples" if target == "xnli" else "seeds")
        assert c["ci_low"] <= c["delta_mean"] + 1e-9 and c["delta_mean"] - 1e-9 <= c["ci_high"]


def test_per_language_deltas(summary):
    pl = summary["per_language"]["xquad"]
    for lang in LANGS:
        want = np.mean([VALUES[("siqa", "xquad", k, lang)] - VALUES[("none", "xquad", k, lang)] for k in SEEDS])
        assert pl["siqa"][lang]["delta"] == pytest.approx(want, abs=1e-12)
        assert pl["none"][lang]["mean"] == pytest.approx(np.mean([VALUES[("none", "xquad", k, lang)]
                                                                  for k in SEEDS]), abs=1e-12)


def test_bootstrap_finds_large_consistent_gain(summary):
    for target in ("xnli", "xquad"):
        c = _cell(summary, "siqa", target)
        assert c["significant"] is True, c
        assert c["p_value"] < 0.01 and c["ci_low"] > 0


def test_bootstrap_finds_nothing_in_zero_mean_noise(summary):
    for target in ("xnli", "xquad"):
        c = _cell(summary, "mnli", target)
        assert c["delta_mean"] == pytest.approx(0.0, abs=1e-9)
        assert c["significant"] is False, c
        assert c["p_value"] > 0.3 and c["ci_low"] < 0 < c["ci_high"]


def test_bootstrap_is_reproducible_and_seed_only_degenerates():
    cells = {"de": np.array([0.01, -0.02, 0.015]), "fr": np.array([0.0, 0.01, -0.01])}
    a = paired_bootstrap(cells, n_resamples=1000, seed=0)
    assert a == paired_bootstrap(cells, n_resamples=1000, seed=0)
    assert a["unit"] == "seeds" and a["delta"] == pytest.approx(np.mean([c.mean() for c in cells.values()]))
    one = paired_bootstrap({"de": np.array([0.05])}, n_resamples=100)
    assert one["p_value"] is None and one["ci_low"] is None and one["delta"] == pytest.approx(0.05)


def test_selection_en_dev_and_target_dev(store, summary):
    sel = summary["selection"]
    assert sel["rule"] == "en-dev"
    assert sel["targets"]["xnli"]["setting"] == "mnli"  # best English dev, though siqa is best on test
    assert sel["targets"]["xquad"]["setting"] == "siqa"
    assert sel["targets"]["xnli"]["dev_score"] == pytest.approx(0.85 + 0.001)
    # the selection's XTREME score against the baseline's, over the same tasks
    sel_scores = {"xnli": {lang: np.mean([VALUES[("mnli", "xnli", k, lang)] for k in SEEDS]) for lang in LANGS},
                  "xquad": {lang: np.mean([VALUES[("siqa", "xquad", k, lang)] for k in SEEDS]) for lang in LANGS}}
    base_scores = {t: {lang: np.mean([VALUES[("none", t, k, lang)] for k in SEEDS]) for lang in LANGS}
                   for t in ("xnli", "xquad")}
    x = sel["benchmarks"]["xtreme"]
    assert x["partial"] is True and x["tasks"] == ["xnli", "xquad"]
    want = xtreme_score(sel_scores)["overall_partial"] - xtreme_score(base_scores)["overall_partial"]
    assert x["delta"] == pytest.approx(want, abs=1e-12)
    target_dev = summarize(store, selection="target-dev", n_resamples=50)["selection"]
    assert target_dev["targets"]["xnli"]["setting"] == "siqa"
    assert target_dev["targets"]["xnli"]["languages"] == ["de", "fr"]


def test_xtreme_scores_are_labelled_partial(summary):
    xt = summary["benchmarks"]["xtreme"]["siqa"]
    assert xt["partial"] is True and xt["overall"] is None
    per_task = {t: {lang: np.mean([VALUES[("siqa", t, k, lang)] for k in SEEDS]) for lang in LANGS}
                for t in ("xnli", "xquad")}
    # XTREME scores QA by (EM + F1) / 2 (official evaluate.py); the store's EM rows are F1 - 0.1
    per_task["xquad"] = {lang: {"f1": v, "exact_match": v - 0.1} for lang, v in per_task["xquad"].items()}
    assert xt["score"] == pytest.approx(np.mean(list(per_task["xnli"].values())) / 2
                                        + (np.mean(list(VALUES[("siqa", "xquad", k, lang)] for k in SEEDS
                                                        for lang in LANGS)) - 0.05) / 2, abs=1e-12)
    assert xt["score"] == pytest.approx(xtreme_score(per_task)["overall_partial"], abs=1e-12)
    assert "xtreme-r" in summary["benchmarks"]


def test_bad_arguments(store):
    with pytest.raises(ValueError, match="selection"):
        summarize(store, selection="test")


@pytest.fixture(scope="module")
def report(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    return build_report(store, out, n_resamples=200), out


def test_report_files(report, summary):
    paths, out = report
    assert {"html", "markdown", "json", "csv", "deltas", "heatmap:xnli", "heatmap:xquad"} <= set(paths)
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3 and 'id="main-table"' in page
    assert "PARTIAL" in page and "UNWEIGHTED" in page and "paired bootstrap" in page
    md = paths["markdown"].read_text(encoding="utf-8")
    assert "](heatmap-xnli.png)" in md and "## How this report aggregates" in md
    c = _cell(summary, "siqa", "xnli")
    score = f"{100 * c['mean']:.2f} ± {100 * c['std']:.2f}"
    assert score in md and score in page
    saved = json.loads(paths["json"].read_text())
    assert saved["selection"]["targets"]["xquad"]["setting"] == "siqa"


def test_report_without_baseline_or_results(tmp_path):
    empty = Store(tmp_path / "empty.sqlite")
    paths = build_report(empty, tmp_path / "out")
    assert "(no results)" in paths["html"].read_text()
    s = Store(tmp_path / "nobase.sqlite")
    s.add_run("r", config={}, config_hash="h", model="m", setting="siqa", target="xnli", seed=0)
    s.add_metrics("r", "e", [{"task": "xnli", "lang": "de", "split": "test", "metric": "accuracy", "value": 0.5,
                              "n": 1}])
    summ = summarize(s)
    assert summ["table"][0]["delta_mean"] is None and any("baseline" in n for n in summ["notes"])


def test_format_rows_unchanged():
    rows = [{"task": "xnli", "lang": "de", "metric": "accuracy", "value": v} for v in (0.5, 0.7)]
    out = format_rows(rows)
    assert " 60.00±10.00" in out and out.splitlines()[0].split()[:2] == ["task", "metric"]
    assert format_rows([]) == "(no results)"


# --------------------------------------------------------------------------- predictions


def test_export_predictions(tmp_path):
    store = Store(tmp_path / "results.sqlite")
    preds = {"xnli": ["entailment", "neutral"], "udpos": [["NOUN", "VERB"], ["DET"]],
             "xquad": {"q1": "Paris", "q2": ""}}
    family = {"xnli": "classification", "udpos": "tagging", "xquad": "span_qa"}
    for task, p in preds.items():
        store.add_run(f"r-{task}", config={}, config_hash="h", model="m", setting="siqa", target=task, seed=0)
        phase = tmp_path / "phases" / f"eval-{task}"
        (phase / "predictions").mkdir(parents=True)
        (phase / "predictions" / "de.json").write_text(json.dumps(p))
        # the shape pipeline.record stores: the phase's config.json ({"kind", "config", "input"})
        store.add_phase(f"r-{task}", f"eval-{task}", "eval", status="trained", path=phase, seed=0,
                        config={"kind": "eval", "input": "target-0",
                                "config": {"target": task, "family": family[task], "split": "test",
                                           "languages": ["de"]}})
    written = export_predictions(store, tmp_path / "sub", setting="siqa", seed=0)
    assert len(written) == 3
    sub = tmp_path / "sub"
    assert (sub / "xnli" / "test-de.tsv").read_text() == "entailment\nneutral\n"
    assert (sub / "udpos" / "test-de.tsv").read_text() == "NOUN\nVERB\n\nDET\n\n"
    assert json.loads((sub / "xquad" / "test-de.json").read_text()) == {"q1": "Paris", "q2": ""}
    nested = export_predictions(store, tmp_path / "all")
    assert (tmp_path / "all" / "siqa" / "seed0" / "xnli" / "test-de.tsv").exists() and len(nested) == 3


def test_export_predictions_without_an_eval_config_is_a_located_error(tmp_path):
    phase = tmp_path / "eval-x"
    (phase / "predictions").mkdir(parents=True)
    (phase / "predictions" / "de.json").write_text(json.dumps(["a"]))
    with pytest.raises(ConfigError, match=r"eval-x: no eval config names its family, split, target"):
        export_predictions([phase], tmp_path / "out")


# --------------------------------------------------------------------------- the page in a browser


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars"]


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless browser; installing it is CI's job (.ci/run), its absence fails the run under CI=true."""
    exe = shutil.which("chromium")
    if exe is None:
        skip_missing("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    return exe


def test_html_renders_in_headless_chromium(chromium, report, summary, tmp_path):
    import matplotlib.image as mpimg

    paths, _ = report
    url = paths["html"].resolve().as_uri()
    base = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,900"]
    png = tmp_path / "page.png"
    shot = subprocess.run(base + [f"--screenshot={png}", url], capture_output=True, text=True, timeout=120)
    assert png.exists(), shot.stderr[-2000:]
    img = mpimg.imread(png)
    assert img.shape[0] >= 800 and img.shape[1] >= 1100
    rgb = img[..., :3]
    assert rgb.std() > 0.05 and rgb.mean() < 0.99  # not blank, not all white
    dom = subprocess.run(base + ["--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert 'id="main-table"' in dom
    c = _cell(summary, "siqa", "xquad")
    assert f"{100 * c['mean']:.2f} ± {100 * c['std']:.2f}" in dom
    assert f"Δ {100 * c['delta_mean']:+.2f}" in dom
    assert "<img" in dom and "data:image/png;base64," in dom


def test_report_reads_the_tasks_primary_metric(tmp_path):
    """The report scores a target by its task's primary metric (the first of its metrics), not by a list of its own:
    a POS task defined in a run's config with metrics [accuracy, f1] is reported by accuracy."""
    store = Store(tmp_path / "results.sqlite")
    task = {"name": "my_pos", "family": "tagging", "languages": ["en", "de"], "labels": ["NOUN", "VERB"],
            "metrics": ["accuracy", "f1"], "files": {"test": "pos/test-{lang}.tsv"}}
    for setting, base in (("none", 0.5), ("siqa", 0.6)):
        store.add_run(setting, config={"tasks": [task]}, config_hash=setting, model="m", setting=setting,
                      target="my_pos", seed=0)
        store.add_metrics(setting, "e", [{"task": "my_pos", "lang": lang, "split": "test", "metric": m,
                                          "value": base + (0.2 if m == "f1" else 0) + i / 100, "n": 10}
                                         for i, lang in enumerate(("en", "de")) for m in ("accuracy", "f1")])
    s = summarize(store)
    assert s["target_info"]["my_pos"]["metric"] == "accuracy"
    assert _cell(s, "siqa", "my_pos")["mean"] == pytest.approx(0.605, abs=1e-12)
    assert summarize(store, primary_metrics={"my_pos": "f1"})["target_info"]["my_pos"]["metric"] == "f1"
    store.add_run("x", config={}, config_hash="x", model="m", setting="none", target="unknown_task", seed=0)
    store.add_metrics("x", "e", [{"task": "unknown_task", "lang": "en", "split": "test", "metric": "accuracy",
                                  "value": 0.5, "n": 1}])
    with pytest.raises(ConfigError, match="target 'unknown_task': not a registered task"):
        summarize(store)
