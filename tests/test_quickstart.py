"""The offline quickstart: the CLDR demo data builder, the statistics, and a shortened run on me5-small."""

from __future__ import annotations

import csv
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from xstilts import demo, quickstart

LANGS = ("de", "ru", "ja")  # one Latin-script, two other scripts: enough for the shortened run


# ---------------------------------------------------------------- the data builder


def _read(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    return demo.build(tmp_path_factory.mktemp("demo") / "data")


def test_demo_data_is_deterministic(demo_data, tmp_path):
    again = demo.build(tmp_path / "again")
    files = sorted(p.relative_to(demo_data.root) for p in demo_data.root.rglob("*.jsonl"))
    assert files == sorted(p.relative_to(again.root) for p in again.root.rglob("*.jsonl"))
    for rel in files:
        assert (demo_data.root / rel).read_bytes() == (again.root / rel).read_bytes(), rel
    # A matching manifest means the folder is reused as it is.
    mtime = (again.root / "manifest.json").stat().st_mtime_ns
    assert demo.build(tmp_path / "again").counts == again.counts
    assert (again.root / "manifest.json").stat().st_mtime_ns == mtime
    # Fewer languages: the same items and the same files for those languages (a shortened run is comparable).
    few = demo.build(tmp_path / "few", demo.DemoParams(languages=("ja", "de")))
    for rel in ("cldr_category/train-en.jsonl", "cldr_category/test-ja.jsonl", f"{demo.IS_A_TASK}/train-en.jsonl"):
        assert (few.root / rel).read_bytes() == (demo_data.root / rel).read_bytes(), rel
    assert not (few.root / "cldr_category" / "test-zh.jsonl").exists()
    # Other parameters give another digest (the quickstart keys its data folder on it).
    assert demo.DemoParams().digest() != demo.DemoParams(shots=2).digest()


def test_demo_data_languages_and_balance(demo_data):
    p = demo_data.params
    root = demo_data.root / demo.TARGET_TASK
    train = _read(root / "train-en.jsonl")
    assert {c: sum(r["label"] == c for r in train) for c in demo.CATEGORIES} == {c: p.shots for c in demo.CATEGORIES}
    dev = _read(root / "dev-en.jsonl")
    assert all(sum(r["label"] == c for r in dev) == p.dev_per_class for c in demo.CATEGORIES)
    assert len(p.languages) >= 6
    for lang in ("en",) + p.languages:
        rows = _read(root / f"test-{lang}.jsonl")
        per_class = [sum(r["label"] == c for r in rows) for c in demo.CATEGORIES]
        assert min(per_class) >= 0.75 * p.test_per_class, (lang, per_class)  # balanced enough: chance ~ 1/5
        assert max(per_class) <= p.test_per_class
        assert all(r["text_a"] and r["text_b"] is None for r in rows)
    scripts = {"ru": "\u0400", "ja": "\u3040", "ar": "\u0600", "hi": "\u0900", "zh": "\u4e00"}
    non_latin = 0
    for lang, start in scripts.items():
        if lang in p.languages:
            rows = _read(root / f"test-{lang}.jsonl")
            non_latin += any(any(ord(ch) >= ord(start) for ch in r["text_a"]) for r in rows)
    assert non_latin >= 2
    pairs = _read(demo_data.root / demo.SAME_CATEGORY_TASK / "train-en.jsonl")
    assert len(pairs) == p.pairs
    assert abs(sum(r["label"] == "same" for r in pairs) - p.pairs / 2) <= 1
    assert all(r["text_a"] != r["text_b"] for r in pairs)
    questions = _read(demo_data.root / demo.IS_A_TASK / "train-en.jsonl")
    assert len(questions) > p.pairs / 2
    assert sum(r["label"] == "yes" for r in questions) == sum(r["label"] == "no" for r in questions)
    assert {r["text_b"] for r in questions} == set(demo.KIND_PHRASES.values())


def test_demo_data_has_no_train_test_leakage(demo_data):
    root = demo_data.root / demo.TARGET_TASK
    train = _read(root / "train-en.jsonl")
    dev = _read(root / "dev-en.jsonl")
    pairs = _read(demo_data.root / demo.SAME_CATEGORY_TASK / "train-en.jsonl")
    pairs += [{**r, "text_b": r["text_a"]} for r in _read(demo_data.root / demo.IS_A_TASK / "train-en.jsonl")]
    train_ids = {r["id"] for r in train}
    dev_ids = {r["id"] for r in dev}
    test_ids = {r["id"] for r in _read(root / "test-en.jsonl")}
    assert not test_ids & train_ids and not test_ids & dev_ids and not dev_ids & train_ids
    seen = {r["text_a"].casefold() for r in train} | {t.casefold() for r in pairs for t in (r["text_a"], r["text_b"])}
    dev_names = {r["text_a"].casefold() for r in dev}
    assert not seen & dev_names
    for lang in ("en",) + demo_data.params.languages:
        rows = _read(root / f"test-{lang}.jsonl")
        assert {r["id"] for r in rows} <= test_ids  # the same unseen items in every language
        names = {r["text_a"].casefold() for r in rows}
        assert not names & seen, (lang, sorted(names & seen)[:5])  # no test name is a training text
        if lang != "en":  # names spelt exactly as in English are not cross-lingual tests
            en = {r["id"]: r["text_a"].casefold() for r in _read(root / "test-en.jsonl")}
            assert all(r["text_a"].casefold() != en[r["id"]] for r in rows)


def test_demo_tasks_are_registered():
    from xstilts.tasks import get
    from xstilts.tasks.catalog import demo as _catalog  # noqa: F401

    target = get(demo.TARGET_TASK)
    assert target.family == "classification" and target.labels == demo.CATEGORIES
    assert set(demo.DEFAULT_LANGUAGES) <= set(target.languages)
    assert get(demo.SAME_CATEGORY_TASK).labels == demo.PAIR_LABELS
    assert get(demo.IS_A_TASK).labels == demo.YES_NO


# ---------------------------------------------------------------- statistics and the verdict


def test_paired_statistics_and_verdict():
    s = quickstart.paired([0.50, 0.60, 0.55], [0.60, 0.68, 0.66])
    diffs = [0.10, 0.08, 0.11]
    mean = sum(diffs) / 3
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    assert s["gain_mean"] == pytest.approx(mean)
    assert s["gain_std"] == pytest.approx(sd)
    assert s["ci_low"] == pytest.approx(mean - 4.303 * sd / math.sqrt(3), abs=1e-3)
    assert quickstart.t_quantile(2) == pytest.approx(4.303, abs=1e-3)
    assert quickstart.verdict(s, 8).startswith("Intermediate training HELPED: +9.7")
    noisy = quickstart.paired([0.5, 0.6, 0.55], [0.6, 0.5, 0.57])
    assert noisy["ci_low"] < 0 < noisy["ci_high"]
    assert "within seed noise" in quickstart.verdict(noisy, 8)
    table_row = {**noisy, "direct": [0.5, 0.6, 0.55], "intermediate": [0.6, 0.5, 0.57]}
    assert "positive for 2 of 3 seeds" in quickstart.verdict(table_row, 8)
    assert "HURT" in quickstart.verdict(quickstart.paired([0.6, 0.7, 0.65], [0.5, 0.61, 0.56]), 8)
    single = quickstart.paired([0.5], [0.6])
    assert math.isnan(single["ci_low"]) and "single seed" in quickstart.verdict(single, 8)


def test_summary_pairs_seeds_and_ignores_the_dev_rows():
    exp = quickstart.Experiment("x", "x", "t", arms={}, languages=["de", "ja"])
    rows = []
    for arm, base in (("direct", 0.5), ("intermediate", 0.6)):
        for seed in (0, 1):
            for i, lang in enumerate(["en", "de", "ja"]):
                rows.append({"task": "t", "lang": lang, "split": "test", "metric": "accuracy",
                             "value": base + 0.1 * i + 0.01 * seed, "n": 10, "seed": seed, "arm": arm})
            rows.append({"task": "t", "lang": "en", "split": "dev", "metric": "accuracy", "value": 0.0, "n": 4,
                         "seed": seed, "arm": arm})
    table = quickstart.summarize(rows, exp)
    assert [t["lang"] for t in table] == ["en", "de", "ja", "avg"]
    assert table[0]["direct_mean"] == pytest.approx(0.505) and table[0]["n_test"] == 10
    assert table[-1]["direct"] == pytest.approx([0.65, 0.66]) and table[-1]["gain_mean"] == pytest.approx(0.1)
    assert table[-1]["gain_std"] == pytest.approx(0.0)
    text = quickstart.format_table(table)
    assert "avg (zero-shot)" in text and "en (train)" in text
    md = quickstart.format_table(table, markdown=True).splitlines()
    assert len(md) == 2 + 4 and all(x.count("|") == 7 for x in md)


def test_cli_has_quickstart():
    from xstilts.cli import build_parser

    args = build_parser().parse_args(["quickstart", "--out", "somewhere", "--seeds", "2", "--languages", "de,ja"])
    assert args.command == "quickstart" and args.out == "somewhere" and args.seeds == 2


# ---------------------------------------------------------------- a shortened quickstart on me5-small

SHORT = dict(seeds=(0,), languages=LANGS, test_per_class=20, pairs=800, inter_steps=40, target_steps=40,
             target_lr=1e-4, target_eval_every=40)


def test_short_quickstart_transfers_zero_shot(tmp_path):
    out = tmp_path / "qs"
    lines = []
    result = quickstart.quickstart(out, replace(quickstart.Settings(), **SHORT), log=lines.append)
    text = "\n".join(lines)
    assert "[intermediate] running" in text and "[eval] running" in text  # progress was shown
    assert result.verdict in text

    # The table: CSV and Markdown parse, one row per language plus the zero-shot average.
    with open(result.files["csv"], encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["lang"] for r in rows] == ["en", *LANGS, "avg"]
    for r in rows:
        for k in ("direct_mean", "inter_mean", "gain_mean"):
            assert 0.0 <= abs(float(r[k])) <= 1.0
        assert float(r["gain_mean"]) == pytest.approx(float(r["inter_mean"]) - float(r["direct_mean"]), abs=1e-5)
    md = result.files["markdown"].read_text(encoding="utf-8")
    table = [x for x in md.splitlines() if x.startswith("|")]
    assert len(table) == 2 + len(LANGS) + 2 and all(x.count("|") == 7 for x in table)
    png = result.files["plot"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    summary = json.loads(result.files["json"].read_text(encoding="utf-8"))
    assert summary["verdict"] == result.verdict
    # The HTML report of `xstilts report`, from the runs the quickstart recorded.
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "cldr_category" in html and "cldr_is_a" in html

    # Real transfer: every non-English language is well above chance (1/5) in both arms.
    chance = 1 / len(demo.CATEGORIES)
    for r in rows:
        if r["lang"] not in ("en", "avg"):
            assert float(r["direct_mean"]) > chance + 0.1, r
            assert float(r["inter_mean"]) > chance + 0.1, r

    # A second run reuses every phase and prints the same table.
    again = quickstart.quickstart(out, replace(quickstart.Settings(), **SHORT), log=lambda m: None)
    assert again.phases_trained == 0 and again.phases_reused > 0
    assert [t["inter_mean"] for t in again.table] == [t["inter_mean"] for t in result.table]
    assert not list((out / "runs" / "phases").glob("*/checkpoints"))  # pruned once phases are done


# ---------------------------------------------------------------- the --data-dir variant on ../shared/data


def test_sentence_level_summary_uses_a_paired_bootstrap():
    """Retrieval: one score per arm; the gain's interval comes from the per-sentence hits."""
    exp = quickstart.Experiment("t", "t", "tatoeba", arms={}, train_lang=None, languages=["de", "zh"],
                                unit="sentence")
    hits = {("direct", "de"): [1, 1, 0, 0], ("intermediate", "de"): [1, 1, 1, 0],
            ("direct", "zh"): [1, 0, 1, 0], ("intermediate", "zh"): [1, 0, 1, 0]}
    rows = [{"task": "tatoeba", "lang": lang, "split": "test", "metric": "accuracy", "value": sum(h) / 4, "n": 4,
             "seed": None, "arm": arm} for (arm, lang), h in hits.items()]
    rows += [{"arm": arm, "lang": lang, "per_example": h} for (arm, lang), h in hits.items()]
    table = quickstart.summarize(rows, exp)
    assert [t["lang"] for t in table] == ["de", "zh", "avg"]
    de, zh, avg = table
    assert de["gain_mean"] == pytest.approx(0.25) and de["direct_mean"] == pytest.approx(0.5)
    assert de["ci_low"] <= 0.25 <= de["ci_high"] and de["ci_high"] <= 0.75  # one of 4 sentences changed
    assert zh["gain_mean"] == 0 and zh["ci_low"] == zh["ci_high"] == 0  # identical hits: no spread at all
    assert avg["gain_mean"] == pytest.approx(0.125)
    v = quickstart.verdict(avg, 2, unit="sentence")
    assert "bootstrap over sentences" in v and "+12.5" in v


def test_data_dir_errors_name_the_missing_files(tmp_path):
    from xstilts.cli import main

    from xstilts.errors import ConfigError

    (tmp_path / "siqa").mkdir()
    assert main(["quickstart", "--data-dir", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(ConfigError, match=r"siqa/train\.jsonl.*xnli/test-en\.tsv.*tatoeba\.cmn-eng\.cmn"):
        quickstart.benchmark_experiments(tmp_path, tmp_path / "o", quickstart.DataSettings())
    assert main(["quickstart", "--data-dir", str(tmp_path / "nowhere")]) == 2
    assert main(["quickstart", "--data-dir", str(tmp_path), "--languages", "de"]) == 2


DATA_SHORT = dict(seeds=(0,), inter_examples=160, inter_steps=8, inter_dev=40, copa_steps=8,
                  xcopa_languages=("it", "zh"), xcopa_limit=40, xnli_examples=64, xnli_steps=4,
                  xnli_languages=("de", "ar"), xnli_limit=40, tatoeba_languages=("de", "zh"), tatoeba_limit=100)


def test_short_data_dir_quickstart_on_shared_data(tmp_path):
    """SocialIQA -> COPA/XCOPA, XNLI and Tatoeba on the real files, shortened (1 seed, a few steps)."""
    from conftest import require_shared_data

    data = require_shared_data()
    out = tmp_path / "qsd"
    lines = []
    s = replace(quickstart.DataSettings(), **DATA_SHORT)
    result = quickstart.quickstart_data(data, out, s, log=lines.append)
    text = "\n".join(lines)
    assert [p.name for p in result.parts] == ["xcopa", "xnli", "tatoeba"]
    # One SocialIQA phase, trained by the first experiment and reused by the other two.
    assert text.count("[intermediate] running") == 1 and text.count("[intermediate] reusing") == 2
    for part, langs in zip(result.parts, (["en", "it", "zh", "avg"], ["en", "de", "ar", "avg"], ["de", "zh", "avg"])):
        with open(part.files["csv"], encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert [r["lang"] for r in rows] == langs, part.name
        assert part.verdict in text and part.files["plot"].read_bytes()[:4] == b"\x89PNG"
        for r in rows:
            assert 0 <= float(r["direct_mean"]) <= 1 and 0 <= float(r["inter_mean"]) <= 1
    xcopa_rows = json.loads(result.parts[0].files["json"].read_text(encoding="utf-8"))["rows"]
    assert {(r["lang"], r["split"], r["n"]) for r in xcopa_rows if r["lang"] == "en"} == {("en", "dev", 100)}
    assert {r["n"] for r in xcopa_rows if r["lang"] != "en"} == {40}
    # Real cross-lingual behaviour of the pretrained encoder: Tatoeba far above chance (1 in 100).
    tat = {t["lang"]: t for t in result.parts[2].table}
    for lang in ("de", "zh"):
        assert tat[lang]["direct_mean"] > 0.5 and tat[lang]["n_test"] == 100
        assert tat[lang]["ci_low"] <= tat[lang]["gain_mean"] <= tat[lang]["ci_high"]
    md = (out / "results.md").read_text(encoding="utf-8")
    assert md.count("## ") == 3 and "paired bootstrap over sentences" in md
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert all(t in html for t in ("xcopa", "xnli", "tatoeba", "siqa"))
    # A second run reuses every phase.
    again = quickstart.quickstart_data(data, out, s, log=lambda m: None)
    assert again.phases_trained == 0 and again.phases_reused > 0
    assert [t["inter_mean"] for t in again.parts[1].table] == [t["inter_mean"] for t in result.parts[1].table]
