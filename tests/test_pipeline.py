"""The whole pipeline on a tiny model: intermediate -> target -> zero-shot eval, reuse, resume."""

from __future__ import annotations

import json

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
