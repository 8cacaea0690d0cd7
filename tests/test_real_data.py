"""Real benchmark files end to end on a tiny random model (plumbing, not accuracy).

Reads ../shared/data (or $XSTILTS_SHARED_DATA); skipped with the reason when it is absent (a failure with CI=true).
"""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import SHARED_DATA, needs_data
from xstilts import config, pipeline
from xstilts.cli import main

pytestmark = needs_data


@pytest.fixture(scope="module")
def real_tiny(tmp_path_factory):
    """A tiny model whose tokenizer is trained on a few thousand real sentences of several scripts."""
    import csv

    from xstilts.tiny import build_tiny_model

    corpus = []
    for lang in ("en", "de", "ru", "zh", "ar"):
        with open(SHARED_DATA / "xnli" / f"dev-{lang}.tsv", newline="", encoding="utf-8") as f:
            corpus += [row[0] for row, _ in zip(csv.reader(f, delimiter="\t"), range(300))]
    for lang in ("et", "th", "zh"):
        corpus += [json.loads(x)["premise"] for x in open(SHARED_DATA / "xcopa" / "data" / lang / f"val.{lang}.jsonl")]
    return build_tiny_model(tmp_path_factory.mktemp("real_tiny"), corpus, vocab_size=2000)


def run(tmp_path, model, **raw):
    base = {"model": str(model), "data_dir": str(SHARED_DATA), "workdir": str(tmp_path / "w")}
    return pipeline.run(config.validate(config.merge(base, raw)), log=lambda m: None)


FAST = {"lr": 1e-3, "batch_size": 16, "max_steps": 6, "eval_every": 6, "max_length": 64, "limit": 64, "dev_limit": 32}


def langs_of(rows, metric):
    """Zero-shot languages scored (the English dev rows for model selection are left out)."""
    return {r["lang"] for r in rows if r["metric"] == metric and (r["lang"], r["split"]) != ("en", "dev")
            and 0.0 <= r["value"] <= 1.0}


def test_xnli_english_training_zero_shot_three_languages(tmp_path, real_tiny):
    res = run(tmp_path, real_tiny, target={"tasks": ["xnli"], "train_split": "dev", "train": FAST},
              eval={"languages": ["de", "ru", "zh"], "limit": 30})
    assert langs_of(res.rows, "accuracy") == {"de", "ru", "zh"}
    assert all(r["n"] == 30 for r in res.rows if r["split"] == "test")


def test_xcopa_trained_on_copa(tmp_path, real_tiny):
    res = run(tmp_path, real_tiny, intermediate={"tasks": ["siqa"], "train": {**FAST, "max_steps": 4}},
              target={"tasks": ["xcopa"], "train": FAST}, eval={"languages": ["et", "th", "zh"], "limit": 20})
    assert [p.kind for p in res.phases] == ["intermediate", "target", "eval"]
    assert res.phases[1].summary["train_examples"] == {"xcopa": 64}
    assert langs_of(res.rows, "accuracy") == {"et", "th", "zh"}


def test_tatoeba_retrieval_three_languages_on_the_encoder(tmp_path, real_tiny):
    res = run(tmp_path, real_tiny, target={"tasks": ["tatoeba"]}, eval={"languages": ["de", "fr", "ja"], "retrieval_layer": 1})
    assert [p.kind for p in res.phases] == ["eval"]  # scored straight on the encoder, no fine-tuning
    assert langs_of(res.rows, "accuracy") == {"de", "fr", "ja"}


def test_xquad_trained_on_tydiqa_english(tmp_path, real_tiny):
    res = run(tmp_path, real_tiny, target={"tasks": ["xquad"], "train_task": "tydiqa", "train": {**FAST, "max_length": 96}},
              eval={"languages": ["de", "zh"], "limit": 10})
    assert langs_of(res.rows, "f1") == {"de", "zh"} and langs_of(res.rows, "exact_match") == {"de", "zh"}
    preds = json.loads(next((res.phases[-1].path / "predictions").glob("zh.json")).read_text())
    assert len(preds) == 10 and all(isinstance(p, str) for p in preds)


def test_udpos_tagging(tmp_path, real_tiny):
    res = run(tmp_path, real_tiny, target={"tasks": ["udpos"], "train": FAST},
              eval={"languages": ["de", "zh", "ar"], "split": "dev", "limit": 10})
    assert langs_of(res.rows, "f1") == {"de", "zh", "ar"}
    preds = json.loads((res.phases[-1].path / "predictions" / "de.json").read_text())
    from xstilts.io import read_udpos

    gold = read_udpos(SHARED_DATA / "udpos" / "dev-de.tsv.gz")[:10]
    assert [len(p) for p in preds] == [len(g["tokens"]) for g in gold]  # every word predicted, none truncated


def test_bucc_mining_runs_on_dev(tmp_path, real_tiny):
    from xstilts.families import retrieval
    from xstilts.data import task_file
    from xstilts.tasks import get
    import numpy as np

    spec = get("bucc2018")
    # An oracle embedding: gold pairs share a random vector, everything else is noise. Mining must find them.
    rng = np.random.default_rng(0)
    from xstilts.io import read_bucc

    d = read_bucc(*(task_file(spec, s, "zh", SHARED_DATA) for s in ("dev", "dev_target", "dev_gold")))
    gold_vec = {s: rng.normal(size=64) for s, _ in d["gold"]}
    tgt_of = {t: s for s, t in d["gold"]}
    texts = {**{v: ("s", k) for k, v in d["source"].items()}, **{v: ("t", k) for k, v in d["target"].items()}}

    def embed(sentences, key):
        out = []
        for s in sentences:
            side, k = texts[s]
            g = k if side == "s" else tgt_of.get(k)
            out.append(gold_vec[g] + 0.1 * rng.normal(size=64) if g in gold_vec else rng.normal(size=64))
        return np.stack(out)

    scores = retrieval.evaluate(spec, "dev", "zh", lambda s, l: task_file(spec, s, l, SHARED_DATA), embed)
    assert scores["f1"] > 0.9


TATOEBA_36 = ("afr ara bul ben deu ell spa est eus pes fin fra heb hin hun ind ita jpn jav kat kaz kor mal mar nld por "
              "rus swh tam tel tha tgl tur urd vie cmn").split()  # ISO 639-3 codes of XTREME's Tatoeba languages


def test_data_check_reports_counts_and_missing(capsys):
    assert main(["data", "check", str(SHARED_DATA), "--tasks", "xnli", "tatoeba", "mnli"]) == 0
    lines = {tuple(x.split()) for x in capsys.readouterr().out.splitlines()}
    assert ("xnli", "test", "15/15", "75150", "-") in lines  # 5010 x 15, as ../shared/data/README.md says
    # Tatoeba: the 36 XTREME languages' pairs, counted as lines of the raw LASER files (wc -l), not by xstilts:
    # 28 languages x 1000 + jv 205 + ka 746 + kk 575 + ml 687 + sw 390 + ta 307 + te 234 + th 548 = 31692
    # (../shared/data/README.md: "1000 pairs for most languages (min 104)"; it states no total)
    sizes = {c: (SHARED_DATA / "tatoeba" / f"tatoeba.{c}-eng.eng").read_bytes().count(b"\n") for c in TATOEBA_36}
    assert max(sizes.values()) == 1000 and min(sizes.values()) >= 104 and sum(sizes.values()) == 31692
    assert ("tatoeba", "test", "36/36", "31692", "-") in lines
    assert ("mnli", "train", "0/1", "0", "all") in lines


def test_show_examples_decodes_featurized_rows(capsys, real_tiny, tmp_path):
    assert main(["show-examples", "xnli", "model=" + str(real_tiny), "data_dir=" + str(SHARED_DATA),
                 "workdir=" + str(tmp_path), "--lang", "de", "-n", "2"]) == 0
    out = capsys.readouterr().out
    assert out.count("--- xnli [de/test]") == 2 and "'label'" in out


def test_ud_treebank_tasks_read_the_conllu_test_sets(capsys):
    assert main(["data", "check", str(SHARED_DATA), "--tasks", "udpos_ewt", "udpos_gsd", "udpos_tdt", "udpos_imst",
                 "udpos_pud"]) == 0
    lines = {tuple(x.split()) for x in capsys.readouterr().out.splitlines()}
    # sentence counts of ../shared/data/README.md's ud/ table
    assert ("udpos_ewt", "dev", "1/1", "2001", "-") in lines and ("udpos_ewt", "test", "1/1", "2077", "-") in lines
    assert ("udpos_gsd", "test", "3/9", str(977 + 427 + 500), "fr,id,ja,ko,pt,ru") in lines
    assert ("udpos_tdt", "test", "1/1", "1555", "-") in lines and ("udpos_imst", "test", "1/1", "1100", "-") in lines
    assert ("udpos_pud", "test", "4/20", "4000", "cs,de,es,fi,fr,id,is,it,ja,ko,pl,pt,sv,th,tr,zh") in lines


def test_udpos_zero_shot_on_pud_treebanks(tmp_path, real_tiny):
    res = run(tmp_path, real_tiny, target={"tasks": ["udpos_pud"], "train": FAST},
              eval={"languages": ["ar", "hi"], "limit": 10})
    assert langs_of(res.rows, "f1") == {"ar", "hi"}
    assert {r["split"] for r in res.rows if r["lang"] in ("ar", "hi")} == {"test"}
    from xstilts.io import read_conllu

    preds = json.loads((res.phases[-1].path / "predictions" / "hi.json").read_text())
    gold = read_conllu(SHARED_DATA / "ud" / "hi_pud-ud-test.conllu.gz")[:10]
    assert [len(p) for p in preds] == [len(g["tokens"]) for g in gold]


def _ids(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("task", ["hellaswag", "cosmosqa"])
def test_multiple_choice_truncates_context_first_then_choice_on_real_rows(task, tiny_model):
    """Real HellaSwag / Cosmos QA rows at max_length 32: every choice fits; the context is cut before the choice."""
    from xstilts.data import load_examples
    from xstilts.families import multiple_choice
    from xstilts.model import load_tokenizer
    from xstilts.tasks import get

    spec, tok, max_length = get(task), load_tokenizer(str(tiny_model)), 32
    examples = load_examples(spec, "dev", "en", SHARED_DATA, limit=40)
    with pytest.raises(Exception, match="Truncation error"):  # what featurization used to do with these rows
        tok([e["context"] for e in examples for _ in e["choices"]], [c for e in examples for c in e["choices"]],
            truncation="only_first", max_length=max_length)
    out = multiple_choice.featurize(examples, tok, spec, max_length)
    budget = max_length - tok.num_special_tokens_to_add(pair=True)
    special = {tok.bos_token_id, tok.eos_token_id, tok.cls_token_id, tok.sep_token_id} - {None}  # not <unk>
    cut_context = cut_choice = 0
    for e, choices, n_ctx, n_choice in zip(examples, out["choice_ids"], out["truncated_context"],
                                           out["truncated_choice"]):
        ctx = _ids(tok, " ".join(x for x in (e["context"], e.get("question")) if x))
        assert len(choices) == len(e["choices"])
        for ids, choice in zip(choices, e["choices"]):
            c = _ids(tok, choice)
            assert len(ids) <= max_length
            assert [t for t in ids if t not in special] == ctx[:max(0, budget - len(c))] + c[:budget]
        assert n_ctx == sum(len(ctx) + len(_ids(tok, c)) > budget for c in e["choices"])
        assert n_choice == sum(len(_ids(tok, c)) > budget for c in e["choices"])
        cut_context, cut_choice = cut_context + n_ctx, cut_choice + n_choice
    assert cut_context > 0 and cut_choice > 0  # both kinds of cut happen on these rows


def test_multiple_choice_truncation_is_reported_in_the_phase_summaries(tmp_path, tiny_model):
    """A run on real Cosmos QA rows at max_length 32 completes and counts what it cut in each phase's summary."""
    from xstilts import config, pipeline
    from xstilts.data import featurized, load_examples, truncation_summary
    from xstilts.model import load_tokenizer
    from xstilts.tasks import get

    task = {"name": "cosmos_cut", "family": "multiple_choice", "format": "cosmosqa", "languages": ["en"],
            "files": {"train": "cosmosqa/valid.csv", "test": "cosmosqa/valid.csv"}}
    train = {"max_steps": 1, "eval_every": 1, "batch_size": 4, "max_length": 32, "limit": 12}
    cfg = config.validate({"model": str(tiny_model), "data_dir": str(SHARED_DATA), "workdir": str(tmp_path / "w"),
                           "tasks": [task], "target": {"tasks": ["cosmos_cut"], "seeds": [0], "train": train},
                           "eval": {"limit": 12}})
    logs = []
    result = pipeline.run(cfg, log=logs.append)
    examples = load_examples(get("cosmos_cut"), "train", "en", SHARED_DATA, limit=12)
    want = truncation_summary(featurized(get("cosmos_cut"), examples, load_tokenizer(str(tiny_model)),
                                         max_length=32, cache_dir=tmp_path / "c", source_key="x"))
    assert want["examples"] == 12 and want["examples_truncated"] > 0 and want["choice"] > 0
    target, ev = result.phases
    assert target.summary["truncated"] == {"cosmos_cut": want}
    assert ev.summary["truncated"] == {"en": want}  # the same 12 rows, evaluated
    assert any(f"truncated {want['examples_truncated']} of 12 examples" in m for m in logs)
