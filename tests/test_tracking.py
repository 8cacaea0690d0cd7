"""Trackers through accelerate: a run with log_with: [tensorboard] leaves the curves and results in event files."""

from __future__ import annotations

import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import TOY_TASKS
from xstilts import config, pipeline
from xstilts.errors import ConfigError


def _cfg(tmp_path, tiny_model, toy_data, overrides=()):
    raw = {"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / "work"), "tasks": TOY_TASKS,
           "target": {"tasks": ["toy_topic"], "train": {"lr": 1e-3, "batch_size": 16, "max_steps": 8, "eval_every": 4,
                                                        "max_length": 32}},
           "eval": {"languages": ["en", "de"]}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return config.load(path, list(overrides))


def _scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def _hparams(run_dir) -> dict:
    """The hyperparameters TensorBoard's hparams plugin holds (add_hparams writes them to a sub-folder)."""
    out = {}
    for sub in [run_dir, *[p for p in run_dir.iterdir() if p.is_dir()]]:
        acc = EventAccumulator(str(sub))
        acc.Reload()
        try:
            contents = acc.PluginTagToContent("hparams").values()
        except KeyError:  # no hparams in this folder
            continue
        for content in contents:
            data = plugin_data_pb2.HParamsPluginData.FromString(content)
            if data.HasField("session_start_info"):
                for k, v in data.session_start_info.hparams.items():
                    out[k] = v.string_value or v.number_value or v.bool_value
    return out


def test_tensorboard_holds_loss_lr_dev_and_zero_shot_metrics(tmp_path, tiny_model, toy_data):
    logs = tmp_path / "tb"
    cfg = _cfg(tmp_path, tiny_model, toy_data, ["log_with=[tensorboard]", f"logging_dir={logs}"])
    result = pipeline.run(cfg, log=lambda m: None)
    run_id = pipeline.phase_key("run", cfg.identity(), "")
    run_dir = logs / run_id
    s = _scalars(run_dir)
    history = result.phases[0].summary["history"]
    assert [step for step, _ in s["target/toy_topic/s0/loss"]] == list(range(1, 9))
    assert [v for _, v in s["target/toy_topic/s0/loss"]] == pytest.approx([h["loss"] for h in history], rel=1e-5)
    # linear decay from 1e-3 without warmup (int(0.1 x 8) = 0 steps); the lr after each step, as the Trainer logs
    assert [v for _, v in s["target/toy_topic/s0/lr"]] == pytest.approx([1e-3 * (8 - k) / 8 for k in range(1, 9)],
                                                                       rel=1e-6, abs=1e-12)
    dev = [(h["step"], h["dev"]) for h in history if "dev" in h]
    assert [k for k, _ in s["target/toy_topic/s0/dev"]] == [k for k, _ in dev] == [4, 8]
    assert [v for _, v in s["target/toy_topic/s0/dev"]] == pytest.approx([v for _, v in dev], rel=1e-6)
    for r in result.rows:
        kind = "dev" if r["split"] == "dev" else "zero-shot"
        [(step, value)] = s[f"{kind}/toy_topic/s0/{r['metric']}/{r['lang']}"]
        assert step == 8 and value == pytest.approx(r["value"], rel=1e-6)
    assert {"zero-shot/toy_topic/s0/accuracy/en", "zero-shot/toy_topic/s0/accuracy/de"} <= set(s)

    # the same run again, logged elsewhere: every phase is reused and replays its recorded curve and results
    again = pipeline.run(_cfg(tmp_path, tiny_model, toy_data, ["log_with=[tensorboard]", f"logging_dir={logs}2"]),
                         log=lambda m: None)
    assert [p.status for p in again.phases] == ["reused", "reused"]
    s2 = _scalars(tmp_path / "tb2" / run_id)
    assert [step for step, _ in s2["target/toy_topic/s0/loss"]] == list(range(1, 9))
    assert [v for _, v in s2["target/toy_topic/s0/loss"]] == pytest.approx([h["loss"] for h in history], rel=1e-5)
    assert [k for k, _ in s2["target/toy_topic/s0/dev"]] == [4, 8]
    assert "target/toy_topic/s0/lr" not in s2  # not recorded in the phase summary
    assert s2["zero-shot/toy_topic/s0/accuracy/de"] == s["zero-shot/toy_topic/s0/accuracy/de"]

    hp = _hparams(run_dir)
    assert hp["target.train.lr"] == pytest.approx(1e-3) and hp["model"] == str(tiny_model)
    assert hp["target.tasks"] == '["toy_topic"]'
    assert hp["phase.00.target.toy_topic"] == result.phases[0].key
    assert hp["phase.01.eval.toy_topic"] == result.phases[1].key


def test_log_with_is_checked_and_left_out_of_the_run_id(tmp_path, tiny_model, toy_data):
    with pytest.raises(ConfigError, match=r"run.yaml: invalid config\n  log_with: Value error, unknown tracker \['tensorbored'\]"):
        _cfg(tmp_path, tiny_model, toy_data, ["log_with=[tensorbored]"])
    plain = _cfg(tmp_path, tiny_model, toy_data)
    logged = _cfg(tmp_path, tiny_model, toy_data, ["log_with=[tensorboard]", "logging_dir=x"])
    assert logged.identity() == plain.identity()
    assert "selection" not in plain.identity()  # run ids from before the setting existed are unchanged


def test_a_tracker_whose_package_is_missing_names_it(tmp_path, tiny_model, toy_data, monkeypatch):
    import accelerate.tracking

    monkeypatch.setattr(accelerate.tracking, "get_available_trackers", lambda: ["tensorboard"])
    cfg = _cfg(tmp_path, tiny_model, toy_data, ["log_with=[wandb]"])
    with pytest.raises(ConfigError, match=r"log_with: the 'wandb' tracker's package is not installed \(pip install wandb\)"):
        pipeline.run(cfg, log=lambda m: None)
