"""Studies: the statistics on hand-made numbers, the shipped real-scale configs (dry runs), and every study
end to end at tiny scale on ../shared/data (tiny XLM-R models of two sizes, a tiny Llama with LoRA)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from conftest import SHARED_DATA, needs_data, require_shared_data
from xstilts import stats, studies
from xstilts.cli import main
from xstilts.errors import ConfigError
from xstilts.studies import efficiency as efficiency_study
from xstilts.studies import latency as latency_study


# =========================================================================== statistics on hand-made numbers


def test_t_interval_matches_hand_computation_and_crossing_is_inconclusive():
    est = stats.t_interval([0.01, 0.02, 0.03])  # mean 0.02, sd 0.01
    half = scipy_stats.t.ppf(0.975, 2) * 0.01 / math.sqrt(3)  # 4.303 * 0.00577 = 0.0248
    assert est["mean"] == pytest.approx(0.02) and est["sd"] == pytest.approx(0.01) and est["n"] == 3
    assert (est["low"], est["high"]) == (pytest.approx(0.02 - half), pytest.approx(0.02 + half))
    assert est["low"] < 0 < est["high"]
    assert stats.verdict(est["low"], est["high"]) == "inconclusive"
    text = stats.describe(est)
    assert text.startswith("+2.00 points (95% CI [-0.48, +4.48], t-interval over 3 seeds): inconclusive")
    assert "crosses zero" in text


def test_verdicts_positive_negative_and_one_seed():
    pos = stats.t_interval([0.05, 0.06, 0.04])
    neg = stats.t_interval([-0.05, -0.06, -0.04])
    assert stats.verdict(pos["low"], pos["high"]) == "positive" and pos["low"] > 0
    assert stats.verdict(neg["low"], neg["high"]) == "negative" and neg["high"] < 0
    assert stats.describe(pos).endswith(": positive") and "[+" in stats.describe(pos)
    one = stats.t_interval([0.05])
    assert one["low"] is None and stats.verdict(one["low"], one["high"]) == "inconclusive"
    assert stats.describe(one) == "+5.00 points (1 seed: no interval): inconclusive"


def test_welch_interval():
    a, b = [0.50, 0.52, 0.54], [0.40, 0.41, 0.45, 0.42]
    w = stats.welch_interval(a, b)
    ref = scipy_stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert w["mean"] == pytest.approx(np.mean(a) - np.mean(b))
    assert (w["low"], w["high"]) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert "Welch t-interval over 3+4 seeds" in stats.describe(w)


def test_saturation_fit_recovers_known_parameters():
    rng = np.random.default_rng(0)
    f = np.repeat([0.01, 0.03, 0.1, 0.3, 1.0], 5)
    a, tau = 0.05, 0.08  # +5 points at saturation, reached around 8% of the data
    y = a * (1 - np.exp(-f / tau)) + rng.normal(0, 0.002, f.size)
    fit = stats.fit_saturation(f, y, "exp")
    assert fit["ok"] and fit["n"] == 25
    assert fit["params"]["a"] == pytest.approx(a, rel=0.05) and fit["params"]["tau"] == pytest.approx(tau, rel=0.15)
    for name, true in (("a", a), ("tau", tau)):  # the 95% intervals cover the truth
        lo, hi = fit["ci"][name]
        assert lo < true < hi and fit["se"][name] > 0
    assert fit["r2"] > 0.98 and fit["message"] == ""
    flat_y = 0.03 + np.random.default_rng(1).normal(0, 0.002, f.size)
    flat = stats.fit_saturation(f, flat_y, "exp")  # no rise over the measured fractions: tau not identified
    assert "tau not identified" in flat["message"]
    # within noise of the asymptote beyond f* = tau ln(a / noise)
    assert stats.saturation_fraction(fit, 0.002) == pytest.approx(
        fit["params"]["tau"] * math.log(fit["params"]["a"] / 0.002))
    assert stats.saturation_fraction(fit, 1.0) == 0.0  # the whole curve within noise
    # power law a - b f^-c
    y2 = 0.06 - 0.004 * f ** -0.5 + rng.normal(0, 0.0005, f.size)
    p = stats.fit_saturation(f, y2, "power")
    assert p["ok"] and p["params"]["a"] == pytest.approx(0.06, abs=0.003)
    assert p["params"]["c"] == pytest.approx(0.5, abs=0.08)
    assert p["aic"] < stats.fit_saturation(f, y2, "exp")["aic"]  # AIC prefers the true form
    assert not stats.fit_saturation([0.1, 1.0], [0.01, 0.02], "exp")["ok"]


def test_within_noise_fraction_on_hand_table():
    gains = {0.01: {0: 0.00, 1: 0.01, 2: 0.00}, 0.1: {0: 0.030, 1: 0.031, 2: 0.029},
             0.3: {0: 0.050, 1: 0.048, 2: 0.052}, 1.0: {0: 0.049, 1: 0.051, 2: 0.050}}
    f, diffs = stats.within_noise_fraction(gains)
    assert f == 0.3  # 10% is still significantly below the 100% gain, 30% is not
    assert diffs[0.1]["low"] > 0 and diffs[0.3]["low"] < 0 < diffs[0.3]["high"]


def test_fertility_on_a_hand_example():
    def chunks(text):  # 3-character pieces of every word
        return [w[i:i + 3] for w in text.split() for i in range(0, len(w), 3)]

    en = efficiency_study.fertility(["hello world", "a cat"], chunks, "en")  # hel lo wor ld | a | cat = 6 over 4 words
    assert en == {"fertility": 1.5, "subwords": 6, "units": 4, "unit": "word"}
    zh = efficiency_study.fertility(["我喜欢猫 很好"], chunks, "zh")  # 6 characters; pieces 我喜欢 猫 很好 = 3
    assert zh == {"fertility": 0.5, "subwords": 3, "units": 6, "unit": "character"}
    ex = {"premise": "the cat", "hypothesis": "a dog", "label": "neutral"}
    assert efficiency_study.example_texts(ex) == ["the cat", "a dog"]
    copa = {"context": "The man fell.", "question": "cause", "choices": ["He slipped.", "He sang."], "label": 0}
    assert efficiency_study.example_texts(copa) == ["The man fell.", "He slipped.", "He sang."]


def test_selection_regret_on_a_hand_table():
    rows = []
    # base: en dev picks "b" (0.80), but "a" is best zero-shot (0.60 vs 0.55): regret 0.05 in every seed
    for seed, shift in ((0, 0.0), (1, 0.01), (2, -0.01)):
        rows += [{"model": "base", "setting": "none", "seed": seed, "en_dev": 0.70, "zero_shot": 0.50 + shift},
                 {"model": "base", "setting": "a", "seed": seed, "en_dev": 0.75, "zero_shot": 0.60 + shift},
                 {"model": "base", "setting": "b", "seed": seed, "en_dev": 0.80, "zero_shot": 0.55 + shift},
                 {"model": "large", "setting": "none", "seed": seed, "en_dev": 0.8, "zero_shot": 0.70},
                 {"model": "large", "setting": "a", "seed": seed, "en_dev": 0.9, "zero_shot": 0.72 + shift}]
    reg = latency_study.selection_regret(rows)
    b = reg["base"]
    assert (b["chosen"], b["oracle"]) == ("b", "a")
    assert b["regret"] == pytest.approx(0.05) and b["regret_ci"]["mean"] == pytest.approx(0.05)
    assert b["regret_ci"]["sd"] == pytest.approx(0.0, abs=1e-12)
    assert b["gain"]["mean"] == pytest.approx(0.05)  # b over none, paired by seed
    lg = reg["large"]
    assert lg["chosen"] == lg["oracle"] == "a" and lg["regret"] == 0.0
    assert lg["gain"]["mean"] == pytest.approx(0.02) and set(lg["candidates"]) == {"a"}


def test_pareto_front():
    pts = [(10, 0.60), (20, 0.70), (15, 0.55), (20, 0.65), (5, 0.50)]
    assert latency_study.pareto_front(pts) == [True, True, False, False, True]


# =========================================================================== shipped configs, dry runs, CLI


@pytest.mark.parametrize("name", studies.names())
def test_shipped_config_dry_run(name, capsys):
    cfg = studies.load_study(name)
    assert cfg.name == name and cfg.models
    cells = studies.study_cells(cfg)
    assert cells and len({c.run_id for c in cells}) == len(cells)
    assert main(["study", name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"study {name}" in out and "A100-hours" in out and "80GB GPUs" in out and "per model:" in out


def test_model_scale_presets_get_lora_and_a_70b_run_needs_several_gpus(capsys):
    cfg = studies.load_study("model-scale", models=["base", "7b", "70b"])
    assert cfg.models == ["xlm-roberta-base", "meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-70B"]
    cells = studies.study_cells(cfg)
    lora = {c.model: c.cfg.lora for c in cells}
    assert lora["xlm-roberta-base"] is None and lora["meta-llama/Llama-3.1-8B"].r == 16
    big = next(c for c in cells if c.model.endswith("70B"))
    assert big.cfg.gradient_checkpointing and big.cfg.intermediate.train.batch_size == 8
    xnli = next(c for c in cells if c.target == "xnli")
    assert xnli.cfg.target.train_split == "dev"  # target_overrides
    text = studies.dry_run(cfg)
    assert "meta-llama/Llama-3.1-70B: needs 3 x 80 GB GPUs with FSDP" in text
    assert "meta-llama/Llama-3.1-8B: fits on one 80 GB GPU" in text
    # key=value overrides after --models are overrides, not model names
    assert main(["study", "model-scale", "--dry-run", "--models", "large", "seeds=[0]", "targets=[xcopa]"]) == 0
    out = capsys.readouterr().out
    assert "2 grid cells" in out and "xlm-roberta-large" in out


def test_bad_study_configs(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("study: {name: latency, nonsense: 1}\nsettings: [{name: none}]\ntargets: [xcopa]\n")
    assert main(["study", "latency", "--config", str(bad), "--dry-run"]) == 2
    assert "study.nonsense: unknown key" in capsys.readouterr().err
    bad.write_text("settings: [{name: siqa, tasks: [siqa]}]\ntargets: [xcopa]\n")
    assert main(["study", "latency", "--config", str(bad), "--dry-run"]) == 2
    assert "baseline setting 'none'" in capsys.readouterr().err
    bad.write_text("targets: [xcopa]\n")
    assert main(["study", "data-scale", "--config", str(bad), "--dry-run"]) == 2
    assert "study.sweep" in capsys.readouterr().err


def test_accelerate_fsdp_config_is_valid():
    from accelerate.commands.config.config_args import load_config_from_file

    path = studies.CONFIG_DIR.parent / "accelerate" / "fsdp-8gpu.yaml"
    cfg = load_config_from_file(str(path))
    assert str(cfg.distributed_type).endswith("FSDP") and cfg.num_processes == 8
    assert str(cfg.mixed_precision).endswith("bf16")
    fsdp = cfg.fsdp_config
    # FSDP2 full sharding (per-parameter sharding: LoRA's frozen and trainable weights may share a unit)
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_reshard_after_forward"] is True
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_transformer_layer_cls_to_wrap"] == "LlamaDecoderLayer"
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"  # checkpoints gathered whole, written by rank 0


# =========================================================================== end to end at tiny scale

@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: tiny models gain nothing from two, and on a loaded 2-core machine OpenMP threads
    waiting for each other make every step ~10x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


FAST = {"lr": 1e-3, "batch_size": 16, "max_steps": 4, "eval_every": 4, "max_length": 64, "limit": 64, "dev_limit": 32}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Tiny random models with a tokenizer trained on real text of several scripts: XLM-R small and large
    (standing in for base and large) and a Llama (standing in for the 7B/70B decoders)."""
    require_shared_data()
    from xstilts.tiny import build_tiny_model

    corpus = []
    for lang in ("en", "de", "ru", "zh", "th"):
        with open(SHARED_DATA / "xnli" / f"dev-{lang}.tsv", newline="", encoding="utf-8") as f:
            corpus += [" ".join(row[:2]) for row, _ in zip(csv.reader(f, delimiter="\t"), range(300))]
    for lang in ("et", "zh"):
        corpus += [json.loads(x)["premise"] for x in open(SHARED_DATA / "xcopa" / "data" / lang / f"val.{lang}.jsonl")]
    root = tmp_path_factory.mktemp("study_models")
    return {
        "small": str(build_tiny_model(root / "xlmr-small", corpus, vocab_size=1500)),
        "large": str(build_tiny_model(root / "xlmr-large", corpus, vocab_size=1500, hidden=64, layers=4, heads=4)),
        "llama": str(build_tiny_model(root / "llama", corpus, vocab_size=1500, arch="llama")),
        "work": root / "work",
    }


def _update(tiny, **extra):
    """Tiny-scale overrides of a shipped config: real data, few steps, two languages, two seeds."""
    base = {"data_dir": str(SHARED_DATA), "workdir": str(tiny["work"]), "intermediate": {"train": FAST},
            "target": {"train": FAST}, "eval": {"languages": ["et", "zh"], "limit": 20}}
    return {"base": base, "targets": ["xcopa"], "seeds": [0, 1], **extra}


def _run(name, tiny, models, **extra):
    cfg = studies.load_study(name, models=models, update=_update(tiny, **extra))
    out = studies.run_study(cfg, log=lambda m: None)
    assert not out["failed"], out["failed"]
    section = studies.analyze(cfg)
    paths = studies.write_section(section, studies.section_dir(cfg))
    for p in paths.values():
        assert p.exists() and p.stat().st_size > 0
    assert section["tables"][0]["rows"] and section["plots"] and section["test"]
    return cfg, section


# Each study runs once per module, in a fixture: a test that needs a study's phases or section asks for it, so it
# never depends on test order, and a study that fails is an error in every test that needs it, never a skip.


@pytest.fixture(scope="module")
def model_scale(tiny):
    study = {"decoder_overrides": {"lora": {"r": 4, "alpha": 8}}, "n_resamples": 200}
    return _run("model-scale", tiny, [tiny["small"], tiny["large"], tiny["llama"]], study=study)


@pytest.fixture(scope="module")
def latency(tiny):
    settings = [{"name": "none"}, {"name": "siqa", "tasks": ["siqa"]},
                {"name": "nli_en", "tasks": ["xnli_parallel"], "languages": ["en"]}]
    study = {"latency": {"examples": 8, "batch_size": 4, "batches": 2, "warmup": 1, "devices": ["cpu", "cuda"]}}
    return _run("latency", tiny, [tiny["small"], tiny["large"]], settings=settings, study=study)


@pytest.fixture(scope="module")
def forecast_study(tiny, latency):
    """The latency study's grid (same settings, workdir and store) scored by the forecast study."""
    settings = [{"name": "none"}, {"name": "siqa", "tasks": ["siqa"]},
                {"name": "nli_en", "tasks": ["xnli_parallel"], "languages": ["en"]}]
    study = {"forecast": {"examples": 16}, "n_resamples": 100}
    return _run("forecast", tiny, [tiny["small"]], settings=settings, study=study)


@pytest.fixture(scope="module")
def data_scale(tiny):
    multi = [{"name": "xnli_parallel[en]", "tasks": ["xnli_parallel"], "languages": ["en"]},
             {"name": "xnli_parallel[3]", "tasks": ["xnli_parallel"], "languages": ["en", "de", "zh"],
              "compare_to": "xnli_parallel[en]"}]
    study = {"sweep": {"task": "siqa", "fractions": [0.1, 0.3, 1.0]}, "multilingual": multi}
    return _run("data-scale", tiny, [tiny["small"]], study=study)


@pytest.fixture(scope="module")
def efficiency(tiny):
    study = {"efficiency": {"languages": ["en", "de", "ru", "zh"], "repeats": [0, 1], "warmup_runs": 1}}
    return _run("efficiency", tiny, [tiny["small"]], study=study)


@needs_data
def test_model_scale_end_to_end_with_a_tiny_llama(tiny, model_scale):
    cfg, section = model_scale
    llama_cells = [c for c in studies.study_cells(cfg) if c.model == tiny["llama"]]
    assert llama_cells and all(c.cfg.lora is not None and c.cfg.lora.r == 4 for c in llama_cells)
    gaps = section["data"]["gaps"]
    assert {g["model"] for g in gaps} == {tiny["small"], tiny["large"], tiny["llama"]}
    # models ordered by size; two paired seeds each, intervals around the mean; bootstrap over examples
    assert [g["params"] for g in gaps] == sorted(g["params"] for g in gaps)
    for g in gaps:
        assert g["gap"]["n"] == 2 and g["gap"]["low"] <= g["gap"]["mean"] <= g["gap"]["high"]
        assert set(g["per_language"]) == {"et", "zh"} and g["bootstrap_unit"] == "seeds+examples"
    lang_rows = section["tables"][1]["rows"]
    assert len(lang_rows) == 3 * 2  # 3 models x 2 languages
    text = " ".join(section["conclusion"])
    assert "95% CI" in text and "At the largest model" in text and "Welch t-interval" in text
    for g in gaps:  # the verdict quoted follows the interval
        v = stats.verdict(g["gap"]["low"], g["gap"]["high"])
        assert f"{stats.signed(g['gap']['mean'])} points" in text and v in text
    assert "Student-t interval over seeds" in section["test"] and "paired bootstrap" in section["test"]


def _setting_means(tiny, cfg, model) -> dict[str, tuple[float, float]]:
    """Per setting, from the store's metric rows alone: the mean over seeds of XCOPA English dev accuracy and of
    the zero-shot accuracy (unweighted mean over the et and zh test sets)."""
    from xstilts.store import Store

    mf = Store(tiny["work"] / "results.sqlite").metrics_frame()
    per_seed = {}
    for c in studies.study_cells(cfg):
        if c.model != model:
            continue
        rows = mf[(mf["run_id"] == c.run_id) & (mf["task"] == "xcopa") & (mf["metric"] == "accuracy")]
        test = rows[rows["split"] == "test"]
        dev = rows[(rows["split"] == "dev") & (rows["lang"] == "en")]["value"]
        assert sorted(test["lang"]) == ["et", "zh"] and len(dev) == 1, (c.setting, c.seed)
        per_seed.setdefault(c.setting, []).append((float(dev.iloc[0]), float(test["value"].mean())))
    return {setting: tuple(np.mean(v, axis=0)) for setting, v in per_seed.items()}


@needs_data
def test_latency_end_to_end(tiny, latency):
    cfg, section = latency
    reg = section["data"]["targets"]["xcopa"]["regret"]
    for model in (tiny["small"], tiny["large"]):
        r = reg[model]
        # the selection recomputed from the store: English dev picks, the oracle is the best zero-shot score,
        # regret is the zero-shot score the pick gives away (ties go to the setting listed first)
        means = _setting_means(tiny, cfg, model)
        candidates = ["siqa", "nli_en"]
        en_dev, zero_shot = {s: means[s][0] for s in candidates}, {s: means[s][1] for s in candidates}
        chosen, oracle = max(candidates, key=en_dev.get), max(candidates, key=zero_shot.get)
        assert r["en_dev"] == pytest.approx(en_dev, abs=1e-12) and r["zero_shot"] == pytest.approx(zero_shot, abs=1e-12)
        assert (r["chosen"], r["oracle"]) == (chosen, oracle)
        assert r["regret"] == pytest.approx(zero_shot[oracle] - zero_shot[chosen], abs=1e-12)
        lat = section["data"]["targets"]["xcopa"]["latency"][model]["cpu"]
        assert 0 < lat["p50_ms"] <= lat["p95_ms"] and lat["throughput"] > 0 and lat["n"] == 8
    import torch

    assert section["data"]["devices"] == (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    pts = section["data"]["points"]
    assert len(pts) == 2 * 3 and any(p["pareto"] for p in pts)
    text = " ".join(section["conclusion"])
    assert "English dev picks" in text and "Regret" in text and "p50" in text and "Pareto-optimal" in text
    # the latency numbers are cached next to the section: a second analysis measures nothing again
    cache = json.loads((studies.section_dir(cfg) / "latency.json").read_text())
    assert len(cache) == 2


@needs_data
def test_forecast_study_scores_selectors_on_the_latency_grid(tiny, latency, forecast_study):
    cfg, section = forecast_study
    (key, r), = section["data"].items()
    assert key == f"{tiny['small']} / xcopa"
    # recomputed from the store's rows alone: the English-dev rule (here "none" competes too: not training an
    # intermediate task is an option) and the oracle
    means = _setting_means(tiny, cfg, tiny["small"])
    order = ["none", "siqa", "nli_en"]
    assert r["true"] == pytest.approx({s: means[s][1] for s in order}, abs=1e-12)
    assert r["selectors"]["en-dev"]["pick"] == max(order, key=lambda s: (means[s][0], -order.index(s)))
    assert r["oracle"] == max(order, key=lambda s: (means[s][1], -order.index(s)))
    assert set(r["selectors"]) == {"en-dev", "largest-first", "random", "embedding-en", "embedding-xx", "logme",
                                   "en-dev-short"}
    # LogME and the short fine-tunes read every candidate's intermediate encoder from the grid's phases (XCOPA's
    # probe: COPA choices; its English dev: COPA's)
    assert all(isinstance(v, float) for v in r["selectors"]["logme"]["scores"].values())
    assert all(0 <= v <= 1 for v in r["selectors"]["en-dev-short"]["scores"].values())
    assert r["selectors"]["largest-first"]["pick"] == "siqa"  # 33k SIQA examples vs 2,490 XNLI pairs
    for s in r["selectors"].values():
        assert s["regret@1"]["value"] >= 0
    assert r["cost_seconds"]["embedding-en"] < r["grid_seconds"]
    rows = section["tables"][0]["rows"]
    assert len(rows) == 7 and section["tables"][1]["rows"]
    assert "English dev picks" in " ".join(section["conclusion"])
    # forecasts are cached next to the section: a second analysis recomputes nothing
    assert len(json.loads((studies.section_dir(cfg) / "forecasts.json").read_text())) == 1


@needs_data
def test_measure_latency_on_a_trained_target_model(tiny, model_scale):
    from xstilts.data import load_examples
    from xstilts.families import get_family
    from xstilts.model import load_tokenizer
    from xstilts.store import Store
    from xstilts.tasks import get

    store = Store(tiny["work"] / "results.sqlite")
    tf = store.timings_frame()
    phase = tf[(tf["kind"] == "target") & (tf["model"] == tiny["small"])]["path"].iloc[0]  # trained by model_scale
    spec = get("xcopa")
    model = latency_study.load_target_model(phase, spec)
    tok = load_tokenizer(tiny["small"])
    cols = get_family("multiple_choice").featurize(load_examples(spec, "test", "et", SHARED_DATA, limit=6), tok,
                                                   spec, 64)
    rows = [dict(zip(cols, v)) for v in zip(*cols.values())]
    lat = latency_study.measure_latency(model, "xcopa", "multiple_choice", rows, tok, examples=10, batch_size=4, batches=2,
                                  warmup=1)
    assert lat["n"] == 10 and 0 < lat["p50_ms"] <= lat["p95_ms"] and lat["throughput"] > 0
    assert lat["device"] == "cpu" and lat["dtype"] == "fp32"


@needs_data
def test_data_scale_end_to_end(tiny, data_scale):
    cfg, section = data_scale
    names = [s.name for s in studies.study_settings(cfg)]
    assert names == ["none", "siqa@10%", "siqa@30%", "siqa@100%", "xnli_parallel[en]", "xnli_parallel[3]"]
    d = section["data"][f"{tiny['small']}|xcopa"]
    assert set(d["gains"]) == set(names) - {"none"}
    assert d["fits"]["exp"]["n"] == 6 and d["noise"] is not None  # 3 fractions x 2 seeds
    rows = {r[2]: r for r in section["tables"][0]["rows"]}
    assert rows["siqa@10%"][6] == "6" and rows["siqa@100%"][6] == "64"  # examples: 10% of the 64 used
    assert rows["xnli_parallel[3]"][6] == "192"  # 64 per language
    cmp_rows = section["tables"][2]["rows"]
    assert [r[2:4] for r in cmp_rows] == [["xnli_parallel[en]", "siqa@100%"], ["xnli_parallel[3]", "xnli_parallel[en]"]]
    text = " ".join(section["conclusion"])
    assert "xnli_parallel[3] vs xnli_parallel[en]" in text and "95% CI" in text
    assert "curve_fit" in section["test"] and "AIC" in section["test"]


@needs_data
def test_efficiency_end_to_end(tiny, efficiency):
    cfg, section = efficiency
    cells = studies.study_cells(cfg)
    assert len(cells) == 1 + 8 and all(not c.cfg.target.tasks for c in cells)
    assert cells[0].setting == "warmup" and cells[0].cfg.intermediate.seed not in (0, 1)
    # language order rotated per repeat, so no language is always timed first
    assert [c.cfg.intermediate.languages[0] for c in cells[1:]] == ["en", "de", "ru", "zh", "de", "ru", "zh", "en"]
    # timing runs keep their done.json only: no encoder, no checkpoints
    from xstilts.pipeline import plan

    for c in cells:
        (p,) = [p for p in plan(c.cfg).phases if p.kind == "intermediate"]
        assert p.status == "done" and sorted(x.name for x in p.path.iterdir()) == ["config.json", "done.json"]
    d = section["data"][tiny["small"]]
    langs = d["languages"]
    assert list(langs) == ["en", "de", "ru", "zh"]
    assert langs["en"]["time_ratio"]["mean"] == pytest.approx(1.0) and langs["en"]["token_ratio"] == pytest.approx(1.0)
    for lang, v in langs.items():
        assert v["repeats"] == 2 and v["s_per_epoch"] > 0 and v["tokens_per_s"] > 0 and v["examples_per_s"] > 0
        assert v["fertility"]["examples"] == 64  # matched counts
        assert v["fertility"]["unit"] == ("character" if lang == "zh" else "word")
        # with max_steps 4 x batch 16 = 64 examples = one epoch: examples per epoch is the matched count
        assert v["examples_per_epoch"] == pytest.approx(64)
    # fertility with the model's tokenizer, recomputed by hand for English
    from xstilts.data import load_examples
    from xstilts.model import load_tokenizer
    from xstilts.pipeline import register_config_tasks
    from xstilts.tasks import get

    register_config_tasks(cells[0].cfg)
    tok = load_tokenizer(tiny["small"])
    ex = load_examples(get("xnli_parallel"), "train", "en", SHARED_DATA, limit=64)
    sub = sum(len(tok(t, add_special_tokens=False)["input_ids"]) for e in ex for t in (e["text_a"], e["text_b"]))
    words = sum(len(t.split()) for e in ex for t in (e["text_a"], e["text_b"]))
    assert langs["en"]["fertility"]["fertility"] == pytest.approx(sub / words)
    assert d["fit_language_means"]["n"] == 4 and d["fit_all_runs"]["n"] == 8
    assert 0 <= d["fit_language_means"]["r2"] <= 1
    text = " ".join(section["conclusion"])
    assert "R² =" in text and "time per epoch relative to en" in text
    assert "linregress" in section["test"] and "per non-space character" in section["test"]


@needs_data
def test_report_appends_every_study_section(tiny, model_scale, latency, data_scale, efficiency):
    from xstilts.report import build_report
    from xstilts.store import Store

    out = tiny["work"] / "report"
    paths = build_report(Store(tiny["work"] / "results.sqlite"), out, model=tiny["small"], n_resamples=50,
                         studies=studies.load_sections(tiny["work"] / "studies"))
    assert {f"study:{n}" for n in studies.names()} <= set(paths)
    md = paths["markdown"].read_text(encoding="utf-8")
    page = paths["html"].read_text(encoding="utf-8")
    for title in [studies.get(n).title for n in studies.names()]:
        assert f"## {title}" in md and title in page
    assert "*Test:*" in md and "](../studies/model-scale/gap-vs-size.png)" in md
    assert page.count("data:image/png;base64,") >= 4 + 2  # the 4 study plots + the main report's


# =========================================================================== a study is a plug-in

TOY_STUDY = '''
"""A toy study: the mean zero-shot score of each setting (one module: options, cells, analysis)."""
from pydantic import Field

from xstilts import stats
from xstilts.config import _Strict
from xstilts.studies import Study, cell_scores, register, study_settings


class ToyOptions(_Strict):
    digits: int = 2


class Toy(Study):
    name = "toy"
    title = "Study: toy"
    question = "what is each setting's mean zero-shot score?"
    options = {"toy": (ToyOptions, Field(default_factory=ToyOptions))}

    def analyze(self, cfg, store, cells, section, out_dir):
        scores = cell_scores(store, cells)
        rows = []
        for s in study_settings(cfg):
            values = [scores[c.run_id]["zero_shot"] for c in cells if c.setting == s.name and c.run_id in scores]
            est = stats.t_interval(values, cfg.study.alpha)
            rows.append([s.name, est["n"], stats.plain(est["mean"], digits=cfg.study.toy.digits)])
        section["test"] = "mean over seeds"
        section["conclusion"] = [f"{len(rows)} settings"]
        section["tables"].append({"caption": "mean zero-shot score", "header": ["setting", "seeds", "mean"],
                                  "rows": rows})


register(Toy())
'''


@pytest.fixture
def toy_study(tmp_path, monkeypatch):
    """The toy study written as its own module and imported: it registers itself like the built-ins."""
    import importlib

    (tmp_path / "toy_study.py").write_text(TOY_STUDY)
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module("toy_study")
    finally:
        studies.unregister("toy")
        import sys

        sys.modules.pop("toy_study", None)


def _toy_config(path, base, **extra):
    import yaml

    raw = {"study": {"toy": {"digits": 1}, **extra.pop("study", {})}, "base": base,
           "settings": [{"name": "none"}, {"name": "siqa", "tasks": ["siqa"]}], "targets": ["xcopa"], **extra}
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_new_study_is_one_module_and_its_config(toy_study, tmp_path, capsys):
    assert "toy" in studies.names() and studies.names()[:4] == ["model-scale", "data-scale", "latency", "efficiency"]
    path = _toy_config(tmp_path / "toy.yaml", {"workdir": str(tmp_path / "work")}, seeds=[0, 1])
    cfg = studies.load_study("toy", path)
    assert cfg.study.toy.digits == 1 and cfg.study.latency.examples == 64  # its options next to everyone's
    assert [c.setting for c in studies.study_cells(cfg)] == ["none", "none", "siqa", "siqa"]
    assert main(["study", "toy", "--config", str(path), "--dry-run"]) == 0  # the CLI lists it from the registry
    out = capsys.readouterr().out
    assert "study toy: what is each setting's mean zero-shot score?" in out and "A100-hours" in out
    _toy_config(path, {}, study={"toy": {"digits": "x"}})
    assert main(["study", "toy", "--config", str(path), "--dry-run"]) == 2
    assert "study.toy.digits" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="unknown study 'tyo' \\(did you mean 'toy'\\?\\)"):
        studies.get("tyo")
    with pytest.raises(ConfigError, match="registered twice"):
        studies.register(type("Other", (studies.Study,), {"name": "toy"})())


@needs_data
def test_a_toy_study_runs_through_the_same_machinery(toy_study, tiny, model_scale, tmp_path):
    """Its cells are the small model's model-scale cells (same configs, same run ids): nothing is trained again,
    the analysis reads the store, the section is written and the report appends it."""
    from xstilts.report import build_report

    ms_cfg, _ = model_scale
    shared = {k: v for k, v in ms_cfg.study.model_dump().items() if k in studies.StudyOptions.model_fields}
    shared.pop("name")
    path = _toy_config(tmp_path / "toy.yaml", ms_cfg.base, study=shared, seeds=ms_cfg.seeds,
                       settings=[s.model_dump(exclude_defaults=True) for s in ms_cfg.settings],
                       targets=ms_cfg.targets, models=[tiny["small"]])
    cfg = studies.load_study("toy", path)
    ms_ids = {c.run_id for c in studies.study_cells(ms_cfg)}
    assert {c.run_id for c in studies.study_cells(cfg)} <= ms_ids
    lines = []
    assert studies.run_study(cfg, log=lines.append) == {"done": [], "failed": {}}
    assert "0 to run" in lines[0]
    section = studies.analyze(cfg)
    paths = studies.write_section(section, studies.section_dir(cfg))
    assert section["tables"][0]["rows"] and all(r[1] == len(cfg.seeds) for r in section["tables"][0]["rows"])
    assert {"json", "markdown", "csv"} <= set(paths)
    report = build_report(cfg.workdir / "results.sqlite", tmp_path / "report", model=tiny["small"], n_resamples=50,
                          studies=studies.load_sections(cfg.workdir / "studies"))
    assert "study:toy" in report and "Study: toy" in report["markdown"].read_text()
    import shutil

    shutil.rmtree(studies.section_dir(cfg))  # the work folder is shared with the other studies' tests


def test_overrides_may_follow_the_options(monkeypatch, capsys):
    """`xstilts study NAME --config FILE key=value`: the override after the options reaches the study config;
    an unknown option is still an argparse error (exit 2), not an override."""
    from xstilts import cli, studies
    from xstilts.errors import XstiltsError

    seen = {}

    def fake_load(name, config_path, overrides, models=None):
        seen.update(name=name, config=config_path, overrides=list(overrides), models=models)
        raise XstiltsError("stop here")

    monkeypatch.setattr(studies, "load_study", fake_load)
    rc = cli.main(["study", "efficiency", "seeds=[0]", "--config", "c.yaml", "--models", "me5-small",
                   "base.workdir=/tmp/w", "--dry-run", "study.efficiency.repeats=[0,1]"])
    assert rc == 2 and "stop here" in capsys.readouterr().err
    assert {**seen, "overrides": sorted(seen["overrides"])} == {
        "name": "efficiency", "config": "c.yaml", "models": ["me5-small"],
        "overrides": ["base.workdir=/tmp/w", "seeds=[0]", "study.efficiency.repeats=[0,1]"]}
    with pytest.raises(SystemExit) as e:
        cli.main(["study", "efficiency", "--dry-run", "--no-such-option"])
    assert e.value.code == 2 and "unrecognized arguments: --no-such-option" in capsys.readouterr().err
