"""`xstilts results export`: lm-evaluation-harness results JSON, CSV and Parquet from a real tiny pipeline run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import pandas as pd
import pytest

from conftest import TOY_TASKS
from xstilts import config, export, pipeline
from xstilts.cli import main
from xstilts.store import Store

SCHEMA = json.loads((Path(__file__).parent / "fixtures" / "lm_eval_results.schema.json").read_text())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, tiny_model, toy_data) -> Path:
    """Two seeds of one target (toy_topic, 4 languages), recorded as a grid records them: one run per seed."""
    work = tmp_path_factory.mktemp("export")
    store = Store(work / "results.sqlite")
    for seed in (0, 1):
        cfg = config.validate({
            "model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(work), "tasks": TOY_TASKS,
            "target": {"tasks": ["toy_topic"], "seeds": [seed],
                       "train": {"lr": 1e-3, "batch_size": 16, "max_steps": 4, "eval_every": 4, "max_length": 32}}})
        result = pipeline.run(cfg, log=lambda m: None)
        pipeline.record(store, f"run{seed}", cfg, result, setting="none", target="toy_topic", seed=seed)
    return work


def _metric(store, run, lang, split="test"):
    mf = store.metrics_frame()
    row = mf[(mf.run_id == run) & (mf.lang == lang) & (mf.split == split) & (mf.metric == "accuracy")]
    return float(row.value.iloc[0]), int(row.n.iloc[0])


def test_lm_eval_json_matches_the_harness_schema_and_the_store(workdir, tmp_path, capsys):
    out = tmp_path / "lm.json"
    assert main(["results", "--workdir", str(workdir), "export", "--format", "lm-eval-json", "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)

    store = Store(workdir / "results.sqlite")
    a, n = _metric(store, "run0", "de")
    b, _ = _metric(store, "run1", "de")
    de = doc["results"]["toy_topic_de"]
    assert de["acc,none"] == pytest.approx((a + b) / 2, abs=1e-12)
    assert de["acc_stderr,none"] == pytest.approx(abs(a - b) / 2, abs=1e-12)  # std(ddof=1)/sqrt(2) of two values
    assert de["sample_len"] == n == 40 and doc["n-samples"]["toy_topic_de"] == {"original": 40, "effective": 40}
    assert doc["group_subtasks"] == {"toy_topic": ["toy_topic_de", "toy_topic_en", "toy_topic_fr", "toy_topic_ru"]}
    group = doc["groups"]["toy_topic"]["acc,none"]
    assert group == pytest.approx(sum(doc["results"][k]["acc,none"] for k in doc["group_subtasks"]["toy_topic"]) / 4)
    assert doc["versions"]["toy_topic_de"] == 1.0 and doc["n-shot"]["toy_topic_de"] == 0
    assert doc["higher_is_better"]["toy_topic_de"] == {"acc": True}
    assert doc["config"]["model"] == doc["model_name"] and doc["xstilts"]["seeds"] == [0, 1]
    assert doc["xstilts"]["resolved_config"][0]["target"]["seeds"] == [0]
    assert isinstance(doc["date"], float) and doc["xstilts"]["environment"]["packages"]["torch"]

    # the schema is strict where the harness is: a stderr-less metric key or a missing n-shot is rejected
    bad = json.loads(out.read_text())
    bad["results"]["toy_topic_de"]["acc_stderr"] = 0.1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, SCHEMA)
    del doc["n-shot"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_one_run_gets_the_example_level_stderr(workdir, tmp_path):
    out = tmp_path / "one.json"
    assert main(["results", "--workdir", str(workdir), "export", "--format", "lm-eval-json", "--run", "run0",
                 "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    jsonschema.validate(doc, SCHEMA)
    p, n = _metric(Store(workdir / "results.sqlite"), "run0", "fr")
    # lm-eval's mean_stderr of 0/1 scores: sample std (ddof=1) / sqrt(n) = sqrt(p (1 - p) / (n - 1))
    assert doc["results"]["toy_topic_fr"]["acc_stderr,none"] == pytest.approx(math.sqrt(p * (1 - p) / (n - 1)), rel=1e-5)
    assert doc["config"]["random_seed"] == 0 and doc["xstilts"]["run_ids"] == ["run0"]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_round_trip_through_pandas(workdir, tmp_path, fmt):
    out = tmp_path / f"rows.{fmt}"
    assert main(["results", "--workdir", str(workdir), "export", "--format", fmt, "--out", str(out)]) == 0
    back = export.read_rows(out)
    expected = export.rows(Store(workdir / "results.sqlite"))
    pd.testing.assert_frame_equal(back, expected, check_dtype=False, check_exact=False, rtol=1e-12)
    assert list(back.columns) == export.COLUMNS
    de = back[(back.lang == "de") & (back.metric == "accuracy")].iloc[0]
    assert de.n_seeds == 2 and de.seeds == "0,1" and de.interval == "t over 2 seeds" and de.task_version == 1
    assert de.ci_low == pytest.approx(de.value - 12.706204736 * de.stderr, rel=1e-6)  # t(0.975, 1 df)
    assert de.xstilts_version and de.config_hash and de.run_ids == "run0,run1"


def test_unknown_run_is_a_one_line_error(workdir, capsys):
    assert main(["results", "--workdir", str(workdir), "export", "--format", "csv", "--run", "nope"]) == 2
    assert "no run 'nope'" in capsys.readouterr().err
