"""selection: en-dev (the XTREME protocol, default) or target-dev (recorded, labelled "not zero-shot")."""

from __future__ import annotations

import json

import pytest

from conftest import TOY_TASKS
from xstilts import cli, config, pipeline
from xstilts.train import loop
from xstilts.report import build_report
from xstilts.store import Store

MARK = " [target-dev selection: not zero-shot]"


def _cfg(tmp_path, tiny_model, toy_data, **over):
    raw = {"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / "work"), "tasks": TOY_TASKS,
           "target": {"tasks": ["toy_topic"], "train": {"lr": 1e-3, "batch_size": 16, "max_steps": 8, "eval_every": 4,
                                                        "max_length": 32}},
           "eval": {"languages": ["en", "de", "fr"]}}
    return config.validate(config.merge(raw, over))


def _run_spying_on_dev(cfg, monkeypatch):
    """The run, and per dev evaluation in training: the (language, score) of each dev set scored."""
    seen = []
    real = loop.dev_score

    def spy(accelerator, model, dev, tokenizer):
        score = real(accelerator, model, dev, tokenizer)
        seen.append((dev.lang, score))
        return score

    monkeypatch.setattr(loop, "dev_score", spy)
    return pipeline.run(cfg, log=lambda m: None), seen


def test_en_dev_default_and_target_dev_selection(tmp_path, tiny_model, toy_data, monkeypatch):
    store = Store(tmp_path / "work" / "results.sqlite")

    en_cfg = _cfg(tmp_path, tiny_model, toy_data)
    assert en_cfg.selection == "en-dev"
    en, seen = _run_spying_on_dev(en_cfg, monkeypatch)
    assert [lang for lang, _ in seen] == ["en", "en"]  # two evaluations (steps 4 and 8), English dev only
    assert "selection" not in json.loads((en.phases[0].path / "config.json").read_text())["config"]
    pipeline.record(store, "en", en_cfg, en)

    td_cfg = _cfg(tmp_path, tiny_model, toy_data, selection="target-dev")
    td, seen = _run_spying_on_dev(td_cfg, monkeypatch)
    assert td.phases[0].key != en.phases[0].key
    phase_config = json.loads((td.phases[0].path / "config.json").read_text())["config"]
    assert phase_config["selection"] == {"rule": "target-dev", "languages": ["de", "fr"]}
    # each evaluation scores the de and fr dev sets; the selection score is their unweighted mean
    assert [lang for lang, _ in seen] == ["de", "fr", "de", "fr"]
    history = [h["dev"] for h in td.phases[0].summary["history"] if "dev" in h]
    assert history == pytest.approx([(seen[0][1] + seen[1][1]) / 2, (seen[2][1] + seen[3][1]) / 2], abs=1e-12)
    assert td.phases[0].summary["best_dev"] == pytest.approx(max(history), abs=1e-12)
    pipeline.record(store, "td", td_cfg, td)

    runs = store.runs_frame().set_index("run_id")
    assert runs.loc["en", "setting"] == "none" and json.loads(runs.loc["en", "labels"]) == {"selection": "en-dev"}
    assert runs.loc["td", "setting"] == "none" + MARK
    assert json.loads(runs.loc["td", "labels"]) == {"selection": "target-dev"}
    assert set(store.metrics_frame()["setting"]) == {"none", "none" + MARK}  # never averaged together

    paths = build_report(store, tmp_path / "report", n_resamples=50)
    md, page = paths["markdown"].read_text(), paths["html"].read_text()
    for text in (md, page):
        assert f"NOT zero-shot: none{MARK}: target checkpoints picked on target-language dev sets" in text
        assert f"none{MARK}" in text.split("Main table")[1]  # the main table's row is labelled

    # a store holding only target-dev runs: its baseline is the marked "none", and the report says so
    only = Store(tmp_path / "only.sqlite")
    pipeline.record(only, "td", td_cfg, td)
    md = build_report(only, tmp_path / "report2", n_resamples=50)["markdown"].read_text()
    assert f"Baseline: `none{MARK}`" in md and "NOT zero-shot" in md


def test_report_selection_target_dev_is_labelled(tmp_path, tiny_model, toy_data):
    cfg = _cfg(tmp_path, tiny_model, toy_data, eval={"languages": ["en", "de"]})
    store = Store(tmp_path / "s.sqlite")
    pipeline.record(store, "en", cfg, pipeline.run(cfg, log=lambda m: None))
    md = build_report(store, tmp_path / "r", selection="target-dev", n_resamples=50)["markdown"].read_text()
    assert "## Selection (target-dev, not zero-shot) per target" in md
    assert "NOT zero-shot: the selection tables pick each target's intermediate setting" in md
    md = build_report(store, tmp_path / "r2", n_resamples=50)["markdown"].read_text()
    assert "not zero-shot" not in md.lower()


def test_target_dev_without_target_language_dev_files_exits_2(tmp_path, tiny_model, toy_data, capsys):
    import yaml

    raw = _cfg(tmp_path, tiny_model, toy_data, selection="target-dev", target={"tasks": ["toy_pair"]},
               eval={"languages": None}).model_dump(exclude={"log_with", "logging_dir"})
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert cli.main(["run", str(path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert ("xstilts: error: selection: target-dev, but task 'toy_pair' has no 'dev' file in any target language "
            "(none); use selection: en-dev") in err
    with pytest.raises(config.ConfigError, match=r"selection: Input should be 'en-dev' or 'target-dev'"):
        config.load(None, ["selection=test"])


def test_study_pages_of_target_dev_runs_are_labelled(tmp_path):
    from xstilts import studies

    for selection, labelled in (("target-dev", True), ("en-dev", False)):
        cfg = studies.load_study("model-scale", update={"base": {"selection": selection,
                                                                 "workdir": str(tmp_path / selection)}})
        section = studies.analyze(cfg)  # an empty store: the tables are empty, the labels are there
        html = studies.section_html(section, studies.section_dir(cfg))
        md = studies.section_markdown(section, studies.section_dir(cfg), tmp_path)
        for text in (html, md):
            assert ("Study: model scale [not zero-shot]" in text) is labelled
            assert ("Gap per language (x100) [not zero-shot]" in text) is labelled
            assert ("NOT zero-shot: target checkpoints picked on target-language dev sets (selection: target-dev)"
                    in text) is labelled
