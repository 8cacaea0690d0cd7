"""Hub loading for every family: each catalogue task's HubSource read through a faked `datasets.load_dataset`.

The fakes return `datasets.Dataset`s in the column shape (names, nesting, class-label features) of the hub copy
named in the catalogue, so a wrong column mapping, split name or config template fails here.
"""

from __future__ import annotations

import subprocess
import sys

import datasets
import pytest

from xstilts import config, pipeline
from xstilts.data import available, load_aligned, load_examples, load_from_hub
from xstilts.errors import ConfigError, DataError
from xstilts.tasks import HubSource, TaskSpec, get

NLI_CLASSES = datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])


@pytest.fixture
def hub(monkeypatch):
    """Register fake hub datasets: hub[(id, config, split)] = Dataset; records every call."""
    tables, calls = {}, []

    def fake_load(name, config=None, split=None, **kw):
        calls.append((name, config, split, *kw.values()))
        try:
            return tables[(name, config, split)]
        except KeyError:
            raise FileNotFoundError(f"Couldn't find a dataset script or data file for {name}/{config}") from None

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    tables["calls"] = calls
    return tables


def ds(rows: dict, **features):
    """A Dataset with the given columns; class-label features where the hub copy has them."""
    feats = {k: features.get(k) for k in rows}
    if any(v is not None for v in feats.values()):
        inferred = datasets.Dataset.from_dict(rows).features
        return datasets.Dataset.from_dict(rows, features=datasets.Features(
            {k: v if v is not None else inferred[k] for k, v in feats.items()}))
    return datasets.Dataset.from_dict(rows)


def test_classification_xnli_class_labels_and_no_gold_rows(hub):
    hub[("facebook/xnli", "de", "validation")] = ds(
        {"premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [0, 2, -1]}, label=NLI_CLASSES)
    rows = load_examples(get("xnli"), "dev", "de")
    assert hub["calls"] == [("facebook/xnli", "de", "validation")]
    assert rows == [{"text_a": "a", "text_b": "x", "label": "entailment"},
                    {"text_a": "b", "text_b": "y", "label": "contradiction"}]  # -1 (no gold label) left out


def test_classification_mnli_dev_is_matched_and_qqp_label_names_map(hub):
    hub[("nyu-mll/multi_nli", None, "validation_matched")] = ds(
        {"premise": ["p"], "hypothesis": ["h"], "label": [1], "genre": ["fiction"]}, label=NLI_CLASSES)
    assert load_examples(get("mnli"), "dev", "en") == [{"text_a": "p", "text_b": "h", "label": "neutral"}]
    hub[("nyu-mll/glue", "qqp", "train")] = ds(
        {"question1": ["q1", "q3"], "question2": ["q2", "q4"], "label": [1, 0], "idx": [0, 1]},
        label=datasets.ClassLabel(names=["not_duplicate", "duplicate"]))
    assert [r["label"] for r in load_examples(get("qqp"), "train", "en")] == ["1", "0"]


def test_multiple_choice_xcopa_siqa_hellaswag_commonsenseqa(hub):
    hub[("cambridgeltl/xcopa", "th", "test")] = ds({
        "premise": ["p1", "p2"], "choice1": ["a1", "a2"], "choice2": ["b1", "b2"], "question": ["cause", "effect"],
        "label": [1, 0], "idx": [0, 1], "changed": [False, False]})
    assert load_examples(get("xcopa"), "test", "th") == [
        {"context": "p1", "question": "What was the cause?", "choices": ["a1", "b1"], "label": 1},
        {"context": "p2", "question": "What happened as a result?", "choices": ["a2", "b2"], "label": 0}]
    hub[("allenai/social_i_qa", None, "validation")] = ds({
        "context": ["c"], "question": ["q"], "answerA": ["A"], "answerB": ["B"], "answerC": ["C"], "label": ["3"]})
    assert load_examples(get("siqa"), "dev", "en") == [{"context": "c", "question": "q", "choices": ["A", "B", "C"], "label": 2}]
    assert hub["calls"][-1] == ("allenai/social_i_qa", None, "validation", "refs/convert/parquet")  # main has a script
    hub[("Rowan/hellaswag", None, "train")] = ds({
        "ind": [4], "activity_label": ["Baking"], "ctx_a": ["He"], "ctx_b": ["mixes"], "ctx": ["He mixes"],
        "endings": [["e0", "e1", "e2", "e3"]], "source_id": ["x"], "split": ["train"], "split_type": ["indomain"],
        "label": ["1"]})
    assert load_examples(get("hellaswag"), "train", "en") == [
        {"context": "Baking: He mixes", "question": "", "choices": ["e0", "e1", "e2", "e3"], "label": 1}]
    hub[("tau/commonsense_qa", None, "validation")] = ds({
        "id": ["i"], "question": ["q?"], "question_concept": ["c"],
        "choices": [{"label": ["A", "B", "C", "D", "E"], "text": ["a", "b", "c", "d", "e"]}], "answerKey": ["D"]})
    assert load_examples(get("commonsenseqa"), "dev", "en") == [
        {"context": "", "question": "q?", "choices": ["a", "b", "c", "d", "e"], "label": 3}]


def test_span_qa_tydiqa_keeps_one_language_and_xquad_test_is_validation(hub):
    answers = [{"text": ["x"], "answer_start": [0]}, {"text": ["y"], "answer_start": [1]}]
    hub[("google/xtreme", "tydiqa", "train")] = ds({
        "id": ["english-1", "arabic-2"], "title": ["t", "t"], "context": ["x c", "ay"], "question": ["q", "q"],
        "answers": answers})
    assert load_examples(get("tydiqa"), "train", "en") == [
        {"id": "english-1", "question": "q", "context": "x c", "answers": {"text": ["x"], "answer_start": [0]}}]
    hub[("google/xtreme", "XQuAD.de", "validation")] = ds({
        "id": ["a", "b"], "context": ["x c", "ay"], "question": ["q", "r"], "answers": answers})
    rows = load_examples(get("xquad"), "test", "de", limit=1)
    assert [r["id"] for r in rows] == ["a"]


def test_tagging_panx_and_udpos_read_class_label_names(hub):
    panx_tags = datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]))
    hub[("google/xtreme", "PAN-X.de", "test")] = ds(
        {"tokens": [["Angela", "Merkel", "spricht"]], "ner_tags": [[1, 2, 0]], "langs": [["de"] * 3]}, ner_tags=panx_tags)
    assert load_examples(get("panx"), "test", "de") == [{"tokens": ["Angela", "Merkel", "spricht"], "tags": ["B-PER", "I-PER", "O"]}]
    # google/xtreme's udpos class order; the config is named by language
    upos = datasets.Sequence(datasets.ClassLabel(names=["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM",
                                                         "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"]))
    hub[("google/xtreme", "udpos.German", "test")] = ds({"tokens": [["Der", "Hund"]], "pos_tags": [[5, 7]]}, pos_tags=upos)
    assert load_examples(get("udpos"), "test", "de") == [{"tokens": ["Der", "Hund"], "tags": ["DET", "NOUN"]}]
    assert available(get("udpos_r"), "test", "de") and not available(get("udpos_r"), "test", "wo")  # wo: not on the hub


def test_retrieval_tatoeba_aligned_pairs(hub):
    hub[("google/xtreme", "tatoeba.deu", "validation")] = ds({
        "source_sentence": ["Ich bin hier.", "Danke."], "target_sentence": ["I am here.", "Thanks."],
        "source_lang": ["deu", "deu"], "target_lang": ["eng", "eng"]})
    assert load_aligned(get("tatoeba"), "test", "de") == {"source": ["Ich bin hier.", "Danke."],
                                                         "target": ["I am here.", "Thanks."]}


def test_mlm_text_column(hub):
    spec = TaskSpec(name="wiki_mlm", family="mlm", hub=HubSource("wikimedia/wikipedia", "20231101.{lang}", splits={"train": "train"}))
    hub[("wikimedia/wikipedia", "20231101.sw", "train")] = ds({"id": ["1"], "url": ["u"], "title": ["t"], "text": ["Habari"]})
    assert load_from_hub(spec, "train", "sw") == [{"text": "Habari"}]


def test_no_hub_copy_points_at_data_dir_and_load_failures_are_one_line(hub):
    with pytest.raises(DataError, match=r"task 'ccg' has no public hub copy; give a data folder .*--data-dir"):
        load_examples(get("ccg"), "train", "en")
    assert not available(get("lareqa"), "test", "de")
    with pytest.raises(ConfigError, match=r"hub:facebook/xnli/sw\[test\]: datasets.load_dataset failed \(FileNotFoundError"):
        load_examples(get("xnli"), "test", "sw")
    hub[("facebook/xnli", "fr", "test")] = ds({"sentence1": ["a"], "sentence2": ["b"], "label": [0]})
    with pytest.raises(DataError, match=r"hub:facebook/xnli/fr\[test\]:1: field 'text_a' no column 'premise'"):
        load_examples(get("xnli"), "test", "fr")


def test_every_catalogue_task_declares_a_hub_copy_or_none():
    # in a fresh interpreter: other tests register their own (config-defined) tasks in this process's registry
    code = "from xstilts import tasks; print(' '.join(n for n in tasks.names() if tasks.get(n).hub is None))"
    without = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.split()
    assert without == ["bucc2018", "ccg", "cldr_category", "cldr_is_a", "cldr_same_category", "lareqa", "mewsli_x",
                       # UD treebank test sets: read from the CoNLL-U release files (the hub copy runs a script)
                       "udpos_ewt", "udpos_gsd", "udpos_imst", "udpos_pud", "udpos_tdt"]


def test_pipeline_runs_a_target_from_the_hub(hub, tmp_path, tiny_model):
    """No data_dir: train, select and evaluate XNLI entirely through the (faked) hub copy."""
    words = ["cat", "dog", "bread", "cheese"]
    rows = {"premise": [f"I see a {w}" for w in words * 4], "hypothesis": [f"this is the {w}" for w in words[::-1] * 4],
            "label": [0, 1, 2, 0] * 4}
    for lang, split in [("en", "train"), ("en", "validation"), ("de", "test")]:
        hub[("facebook/xnli", lang, split)] = ds(rows, label=NLI_CLASSES)
    cfg = config.validate({"model": str(tiny_model), "workdir": str(tmp_path / "w"),
                           "target": {"tasks": ["xnli"], "seeds": [0], "train": {"batch_size": 8, "max_steps": 2, "max_length": 16}},
                           "eval": {"languages": ["de"]}})
    result = pipeline.run(cfg, log=lambda m: None)
    got = {(r["lang"], r["split"]) for r in result.rows if r["metric"] == "accuracy"}
    assert got == {("de", "test"), ("en", "dev")}
    assert all(r["n"] == 16 for r in result.rows)
