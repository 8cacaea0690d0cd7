"""The whole pipeline on a tiny model: intermediate -> target -> zero-shot eval, reuse, resume."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from conftest import TOY_TASKS
from xstilts import config, pipeline


def toy_config(tmp_path, tiny_model, toy_data, **over) -> config.RunConfig:
    raw = {
        "model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / "work"), "tasks": TOY_TASKS,
        "intermediate": {"tasks": ["toy_pair"], "train": {"lr": 1e-3, "batch_size": 16, "max_steps": 12, "eval_every": 6, "max_length": 32}},
        "target": {"tasks": ["toy_topic"], "seeds": [0], "train": {"lr": 1e-3, "batch_size": 16, "max_steps": 16, "eval_every": 8, "max_length": 32}},
    }
    return config.validate(config.merge(raw, over))


def test_pipeline_runs_then_reuses_every_phase(tmp_path, tiny_model, toy_data):
    cfg = toy_config(tmp_path, tiny_model, toy_data)
    first = pipeline.run(cfg, log=lambda m: None)
    assert [p.kind for p in first.phases] == ["intermediate", "target", "eval"]
    assert all(p.status == "trained" for p in first.phases)
    langs = {r["lang"] for r in first.rows if r["metric"] == "accuracy"}
    assert langs == {"en", "de", "fr", "ru"}
    assert all(0.0 <= r["value"] <= 1.0 for r in first.rows)
    inter = first.phases[0].path
    weights = inter / "encoder" / "model.safetensors"
    mtime = weights.stat().st_mtime_ns

    # Same config again: nothing retrained, the intermediate checkpoint untouched, same numbers.
    second = pipeline.run(cfg, log=lambda m: None)
    assert [p.status for p in second.phases] == ["reused"] * 3
    assert weights.stat().st_mtime_ns == mtime
    assert second.rows == first.rows

    # A second target seed reuses the intermediate phase and trains only the new target.
    third = pipeline.run(config.validate(config.merge(cfg.model_dump(), {"target": {"seeds": [0, 1]}})), log=lambda m: None)
    status = [(p.kind, p.status) for p in third.phases]
    assert status == [("intermediate", "reused"), ("target", "reused"), ("eval", "reused"), ("target", "trained"), ("eval", "trained")]


def test_training_lowers_the_loss(tmp_path, tiny_model, toy_data):
    cfg = toy_config(tmp_path, tiny_model, toy_data, intermediate={"tasks": []},
                     target={"train": {"lr": 3e-3, "max_steps": 40, "eval_every": 40}})
    result = pipeline.run(cfg, log=lambda m: None)
    history = result.phases[0].summary["history"]
    first = sum(h["loss"] for h in history[:5]) / 5
    last = sum(h["loss"] for h in history[-5:]) / 5
    assert last < first * 0.7, (first, last)
    en = [r["value"] for r in result.rows if r["lang"] == "en" and r["metric"] == "accuracy"][0]
    assert en > 0.75  # a learnable English task is learnt


def test_decoder_llm_with_lora_runs_the_pipeline_and_learns(tmp_path, toy_data):
    """A tiny random Llama stands in for 7B/70B decoders: LoRA adapters + heads on the last token."""
    from conftest import WORDS
    from xstilts.tiny import build_tiny_model

    corpus = [f.format(x) for lang in WORDS.values() for k in ("animal", "food") for x in lang[k] for f in lang["frame"]]
    llama = build_tiny_model(tmp_path / "llama", corpus, vocab_size=300, hidden=64, arch="llama")
    cfg = toy_config(tmp_path, llama, toy_data, lora={"r": 4, "alpha": 8},
                     target={"train": {"lr": 5e-3, "max_steps": 40, "eval_every": 40}})
    result = pipeline.run(cfg, log=lambda m: None)
    assert [p.kind for p in result.phases] == ["intermediate", "target", "eval"]
    history = result.phases[1].summary["history"]
    assert sum(h["loss"] for h in history[-5:]) < sum(h["loss"] for h in history[:5])
    # LoRA was merged: the saved encoder is a plain Llama folder with no adapter weights
    from safetensors import safe_open

    with safe_open(str(result.phases[0].path / "encoder" / "model.safetensors"), "pt") as f:
        assert not any("lora" in k for k in f.keys())
    en = [r["value"] for r in result.rows if r["lang"] == "en" and r["split"] == "test"][0]
    assert en > 0.7


def test_mixture_logs_drawn_proportions_and_shares_heads(tmp_path, tiny_model, toy_data):
    import shutil

    from conftest import topic_examples, write_jsonl

    # 96 toy_pair vs 12 toy_topic training examples: proportional sampling would draw toy_pair 96/108 = 0.89
    data = tmp_path / "data"
    shutil.copytree(toy_data, data)
    write_jsonl(data / "topic" / "train-en.jsonl", topic_examples("en", 12, 3))
    logs = []
    steps = 40  # one draw per step; under p = 0.5 the drawn share has sd sqrt(0.25 / 40) = 0.079
    mix = {"tasks": ["toy_pair", "toy_topic"], "mixture": {"rule": "uniform"},
           "train": {"max_steps": steps, "eval_every": steps, "batch_size": 8, "max_length": 32}}
    cfg = toy_config(tmp_path, tiny_model, data, intermediate=mix, target={"tasks": []})
    result = pipeline.run(cfg, log=logs.append)
    drawn = result.phases[0].summary["drawn"]
    assert set(drawn) == {"toy_pair", "toy_topic"}
    assert abs(drawn["toy_pair"] - 0.5) < 3 * (0.25 / steps) ** 0.5  # 0.89 under the proportional rule
    line = next(m.strip() for m in logs if m.strip().startswith("drawn: toy_pair"))
    assert line.count("(target 0.500)") == 2


def test_shared_head_for_same_label_space(tiny_model):
    from xstilts.model import MultiTaskModel, load_encoder
    from xstilts.tasks import get

    model = MultiTaskModel(load_encoder(str(tiny_model)))
    model.add_task(get("mnli"))
    model.add_task(get("snli"))
    model.add_task(get("qqp"))
    assert list(model.heads) == ["nli", "qqp"]  # MNLI and SNLI share the NLI head


def test_continued_mlm_phase_and_mlm_mixed_into_intermediate(tmp_path, tiny_model, toy_data):
    from conftest import WORDS

    text = tmp_path / "mono.txt"
    text.write_text("\n".join(f.format(w) for lang in WORDS.values() for w in lang["animal"] + lang["food"]
                              for f in lang["frame"]), encoding="utf-8")
    mlm = {"files": [str(text)], "mode": "phase", "train": {"max_steps": 30, "eval_every": 30, "lr": 3e-3,
                                                          "batch_size": 16, "max_length": 32}}
    cfg = toy_config(tmp_path, tiny_model, toy_data, mlm=mlm)
    result = pipeline.run(cfg, log=lambda m: None)
    assert [p.kind for p in result.phases] == ["mlm", "intermediate", "target", "eval"]
    hist = result.phases[0].summary["history"]
    assert sum(h["loss"] for h in hist[-5:]) < sum(h["loss"] for h in hist[:5])  # the masked-LM loss goes down
    mixed = toy_config(tmp_path / "m", tiny_model, toy_data, mlm={**mlm, "mode": "mix"})
    res = pipeline.run(mixed, log=lambda m: None)
    assert [p.kind for p in res.phases] == ["intermediate", "target", "eval"]
    assert set(res.phases[0].summary["drawn"]) == {"toy_pair", "mlm"}


def test_early_stopping_stops_when_dev_stops_improving(tmp_path, tiny_model, toy_data):
    cfg = toy_config(tmp_path, tiny_model, toy_data, intermediate={"tasks": []},
                     target={"train": {"lr": 1e-9, "max_steps": 100, "eval_every": 5, "patience": 2}})
    result = pipeline.run(cfg, log=lambda m: None)
    steps = result.phases[0].summary["steps"]
    assert steps == 15  # eval at 5 sets the best; 10 and 15 do not improve with lr ~ 0


def test_three_seed_run_keeps_every_seed_in_the_store_and_report(tmp_path, tiny_model, toy_data):
    """target.seeds: [0, 1, 2] in one run: the store keeps 3 seeds' rows and the report's interval uses all 3."""
    import numpy as np

    from xstilts import report
    from xstilts.store import Store

    cfg = toy_config(tmp_path, tiny_model, toy_data, intermediate={"tasks": []},
                     target={"seeds": [0, 1, 2], "train": {"max_steps": 2, "eval_every": 2}},
                     eval={"languages": ["en", "de"]})
    result = pipeline.run(cfg, log=lambda m: None)
    store = Store(tmp_path / "results.sqlite")
    pipeline.record(store, "multi", cfg, result)
    mf = store.metrics_frame()
    test = mf[(mf.split == "test") & (mf.metric == "accuracy")]
    assert sorted(test["seed"]) == [0, 0, 1, 1, 2, 2]
    want = {(r["seed"], r["lang"]): r["value"] for r in result.rows if r["split"] == "test"}
    assert {(int(r.seed), r.lang): r.value for r in test.itertuples()} == want
    ex = store.example_scores(task="toy_topic", split="test")
    assert sorted(ex["seed"]) == [0, 0, 1, 1, 2, 2]
    cell = report.summarize(store)["table"][0]
    per_seed = [np.mean([want[(s, "en")], want[(s, "de")]]) for s in (0, 1, 2)]
    assert cell["n_seeds"] == 3 and cell["seeds"] == [0, 1, 2]
    assert cell["mean"] == np.mean(per_seed) and cell["std"] == np.std(per_seed, ddof=1)


def test_export_predictions_from_a_recorded_run(tmp_path, tiny_model, toy_data):
    """The store records each phase's resolved config: export names files by the eval split and seed it ran."""
    from xstilts.report import export_predictions
    from xstilts.store import Store

    cfg = toy_config(tmp_path, tiny_model, toy_data, intermediate={"tasks": []},
                     target={"seeds": [0, 1], "train": {"max_steps": 2, "eval_every": 2}},
                     eval={"split": "dev", "languages": ["en", "de"]})
    result = pipeline.run(cfg, log=lambda m: None)
    store = Store(tmp_path / "results.sqlite")
    pipeline.record(store, "r", cfg, result, setting="none")
    stored = store.query("SELECT phase_key, seed, config FROM phases WHERE kind = 'eval' ORDER BY seed")
    evals = [p for p in result.phases if p.kind == "eval"]
    for row, phase in zip(stored.itertuples(), evals):
        assert json.loads(row.config) == json.loads((phase.path / "config.json").read_text())
        assert row.seed == phase.seed
    assert stored["seed"].tolist() == [0, 1]
    written = export_predictions(store, tmp_path / "sub", setting="none", seed=1)
    assert sorted((w["task"], w["lang"], w["family"]) for w in written) == [
        ("toy_topic", "de", "classification"), ("toy_topic", "en", "classification")]
    for lang in ("en", "de"):
        out = tmp_path / "sub" / "toy_topic" / f"dev-{lang}.tsv"  # the split it was evaluated on, not "test"
        preds = json.loads((evals[1].path / "predictions" / f"{lang}.json").read_text())
        assert out.read_text().splitlines() == preds
        gold = [json.loads(x)["label"] for x in (toy_data / "topic" / f"dev-{lang}.jsonl").read_text().splitlines()]
        acc = [r["value"] for r in result.rows if r["seed"] == 1 and r["lang"] == lang and r["split"] == "dev"]
        assert acc == [sum(p == g for p, g in zip(preds, gold)) / len(gold)]


def test_each_seed_trains_on_its_own_subset_when_fraction_below_one(tmp_path, tiny_model, toy_data):
    """train.fraction < 1: the subset seed is part of the featurization cache key (seed 1 never reuses seed 0's)."""
    from xstilts.data import featurized, load_examples
    from xstilts.tasks import get

    cfg = toy_config(tmp_path, tiny_model, toy_data, intermediate={"tasks": []}, target={"train": {"fraction": 0.5}})
    pipe = pipeline.Pipeline(cfg, log=lambda m: None)
    spec, tcfg = get("toy_topic"), cfg.target.train
    examples = load_examples(spec, "train", "en", toy_data)
    for seed in (0, 1):  # the first call fills the cache the second would have hit under the old key
        rows = pipe._train_task(spec, tcfg, seed).rows
        subset = pipeline._subset(examples, 0.5, seed)
        want = featurized(spec, subset, pipe.tokenizer, max_length=tcfg.max_length, cache_dir=tmp_path / f"fresh{seed}",
                          source_key="fresh")
        assert len(rows) == 32 and rows["input_ids"] == want["input_ids"]
    assert pipeline._subset(examples, 0.5, 0) != pipeline._subset(examples, 0.5, 1)


def test_a_target_without_labels_uses_its_training_label_set_in_eval(tmp_path, tiny_model, toy_data):
    """A classification target defined without ``labels`` takes the set its training data uses (sorted); the eval
    phase scores with that same set (recorded by the target phase), so the run equals one that names it."""
    from conftest import TOY_TASKS
    from xstilts import config, pipeline
    from xstilts.tasks import registry

    train = {"lr": 1e-3, "batch_size": 16, "max_steps": 2, "eval_every": 2, "max_length": 32}
    rows = {}
    for name, labels in (("toy_topic_named", ["animal", "food"]), ("toy_topic_unnamed", None)):
        task = {**TOY_TASKS[1], "name": name, "languages": ["en", "de"]}
        if labels is None:
            del task["labels"]
        cfg = config.validate({"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / name),
                               "tasks": [task], "target": {"tasks": [name], "seeds": [0], "train": train}})
        try:
            result = pipeline.run(cfg, log=lambda m: None)
        finally:
            registry._TASKS.pop(name, None)
        rows[name] = sorted((r["lang"], r["metric"], r["value"], r["n"]) for r in result.rows)
        target = [p for p in result.phases if p.kind == "target"][0]
        assert target.summary.get("labels") == (None if labels else ["animal", "food"])  # recorded only when derived
    assert rows["toy_topic_unnamed"] == rows["toy_topic_named"]
    assert ("de", "accuracy", 40) in {(lang, metric, n) for lang, metric, _, n in rows["toy_topic_named"]}


def test_keep_weights_false_is_refused_before_a_target_phase(tmp_path, tiny_model, toy_data):
    from xstilts.config import load
    from xstilts.errors import ConfigError
    from xstilts.pipeline import plan

    base = {"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / "w"), "tasks": TOY_TASKS}
    cfg = load(None, [f"{k}={json.dumps(v)}" for k, v in base.items()]
               + ['intermediate.tasks=["toy_pair"]', "intermediate.keep_weights=false", 'target.tasks=["toy_topic"]'])
    with pytest.raises(ConfigError, match="keep_weights: false writes no encoder"):
        plan(cfg)


def test_an_eval_split_with_no_file_in_any_language_is_an_error(tmp_path, tiny_model, toy_data):
    """PAN-X here has dev files only: evaluating its test split must fail, naming the split and the fix, not
    record an empty zero-shot result."""
    from xstilts.config import load
    from xstilts.errors import ConfigError
    from xstilts.pipeline import plan

    data = tmp_path / "data"
    shutil.copytree(toy_data, data)
    for f in (data / "topic").glob("test-*.jsonl"):
        f.unlink()
    base = {"model": str(tiny_model), "data_dir": str(data), "workdir": str(tmp_path / "w"), "tasks": TOY_TASKS}
    cfg = load(None, [f"{k}={json.dumps(v)}" for k, v in base.items()] + ['target.tasks=["toy_topic"]'])
    with pytest.raises(ConfigError, match=r"toy_topic.*no 'test' file in any of its 4 languages .*topic/test-en"
                                          r".*it has 'dev': set eval.split"):
        plan(cfg)
    ok = load(None, [f"{k}={json.dumps(v)}" for k, v in base.items()] + ['target.tasks=["toy_topic"]',
                                                                          "eval.split=dev"])
    assert [p.kind for p in plan(ok).phases] == ["target", "eval"]
