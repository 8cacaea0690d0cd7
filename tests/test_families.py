"""Family contracts on a tiny tokenizer: windows, label alignment, decoding, collate shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xstilts.data import TokenIds, length_grouped_batches, mixture_probabilities
from xstilts.errors import ConfigError
from xstilts.families import get_family, multiple_choice, span_qa, tagging
from xstilts.tasks import TaskSpec, get, register


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_registry_rejects_duplicates_and_suggests_close_names(monkeypatch):
    from xstilts.tasks import registry

    get("xnli")  # the catalogue is loaded; the probe below is registered into a copy restored afterwards
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))
    register(TaskSpec(name="dup_probe", family="classification", labels=("a", "b")))
    with pytest.raises(ValueError, match="already registered"):
        register(TaskSpec(name="dup_probe", family="classification"))
    with pytest.raises(ConfigError, match="did you mean 'dup_probe'"):
        get("dup_prbe")


def test_mixture_probabilities_hand_computed():
    sizes = {"a": 100, "b": 400, "c": 10000}
    assert mixture_probabilities(sizes, "proportional") == pytest.approx({"a": 100 / 10500, "b": 400 / 10500, "c": 10000 / 10500})
    # capped at 400: weights 100, 400, 400
    assert mixture_probabilities(sizes, "capped", cap=400) == pytest.approx({"a": 1 / 9, "b": 4 / 9, "c": 4 / 9})
    # temperature 2 with cap 400: sqrt -> 10, 20, 20
    assert mixture_probabilities(sizes, "temperature", cap=400, temperature=2) == pytest.approx({"a": 0.2, "b": 0.4, "c": 0.4})
    assert mixture_probabilities(sizes, "uniform") == pytest.approx({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})


def test_length_grouped_batches_cover_every_row_once_and_replay():
    lengths = np.random.default_rng(0).integers(5, 100, size=1000)
    batches = length_grouped_batches(lengths, 16, seed=1, epoch=0)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1000))
    again = length_grouped_batches(lengths, 16, seed=1, epoch=0)
    assert all((a == b).all() for a, b in zip(batches, again))
    # Grouping: the mean within-batch length spread is far below that of random batches.
    spread = np.mean([np.ptp(lengths[b]) for b in batches])
    random_spread = np.mean([np.ptp(lengths[b]) for b in length_grouped_batches(lengths, 16, 1, 0, group=False)])
    assert spread < random_spread / 3


def test_tagging_splits_long_sentences_into_windows_and_never_truncates(tok):
    spec = TaskSpec(name="t_pos", family="tagging", labels=("NOUN", "VERB"))
    words = ["cat", "runs"] * 30  # 60 words, more than a 16-token window holds
    ex = [{"tokens": words, "tags": ["NOUN", "VERB"] * 30}]
    cols = tagging.featurize(ex, tok, spec, max_length=16)
    assert len(cols["input_ids"]) > 1
    assert all(len(ids) <= 16 for ids in cols["input_ids"])
    # every word is labelled exactly once, on its first subword, in order
    labels = [l for row in cols["labels"] for l in row if l != -100]
    assert labels == [0, 1] * 30
    assert sum(sum(f) for f in cols["first"]) == 60
    # decoding per-word predictions puts every window back in place
    rows = [dict(zip(cols, v)) for v in zip(*cols.values())]
    preds = [torch.tensor([l for l in r["labels"] if l != -100]) for r in rows]
    assert tagging.decode(preds, rows, ex, spec) == [ex[0]["tags"]]


def test_span_qa_windows_label_the_answer_and_decode_it_back(tok):
    spec = TaskSpec(name="t_qa", family="span_qa")
    context = " ".join(["the cat sat on the mat"] * 12) + " the dog ate bread " + " ".join(["birds fly"] * 10)
    start = context.index("dog ate")
    ex = [{"id": "q1", "question": "who ate", "context": context,
           "answers": {"text": ["dog ate"], "answer_start": [start]}}]
    cols = span_qa.featurize(ex, tok, spec, max_length=32, stride=8)
    assert len(cols["input_ids"]) > 2  # several windows
    hits = [i for i, s in enumerate(cols["start"]) if s > 0]
    assert hits, "some window contains the answer"
    for i in hits:
        s, e = cols["start"][i], cols["end"][i]
        off = cols["offsets"][i]
        assert context[off[s][0]: off[e][1]].strip() == "dog ate"
    # Logits that point at the answer in one window decode to the answer text.
    rows = [dict(zip(cols, v)) for v in zip(*cols.values())]
    logits = []
    for i, r in enumerate(rows):
        x = torch.zeros(len(r["input_ids"]), 2)
        if i == hits[0]:
            x[r["start"], 0] = x[r["end"], 1] = 10.0
        logits.append(x)
    assert span_qa.decode(logits, rows, ex, spec) == ["dog ate"]
    # SQuAD v2: a null score above every span gives the empty answer.
    v2 = TaskSpec(name="t_qa2", family="span_qa", options={"version_2": True})
    for x in logits:
        x[0, :] = 20.0
    assert span_qa.decode(logits, rows, ex, v2) == [""]


def test_multiple_choice_scores_one_logit_per_choice(tok):
    from xstilts.families.multiple_choice import ChoiceHead

    spec = TaskSpec(name="t_mc", family="multiple_choice")
    ex = [{"context": "the cat", "question": "what next", "choices": ["sat", "ran", "ate bread"], "label": 2},
          {"context": "a dog", "question": "", "choices": ["runs", "flies"], "label": 0}]
    cols = multiple_choice.featurize(ex, tok, spec, max_length=16)
    rows = [dict(zip(cols, v)) for v in zip(*cols.values())]
    batch = multiple_choice.collate(rows, TokenIds.of(tok))
    assert batch["input_ids"].shape[0] == 6 and batch["choice_mask"].tolist() == [[True] * 3, [True, True, False]]
    head = ChoiceHead(8)
    hidden = torch.randn(6, batch["input_ids"].shape[1], 8)
    loss, logits = multiple_choice.loss_and_logits(head, hidden, batch)
    assert logits.shape == (2, 3) and torch.isinf(logits[1, 2]) and torch.isfinite(loss)


def _reference_qa_decode(logits_rows, rows, examples, spec):
    """span_qa.decode before it was vectorised: the nested loop over top-k starts and ends."""
    best = [(float("-inf"), "") for _ in examples]
    null = [float("inf") for _ in examples]
    for logits, row in zip(logits_rows, rows):
        logits = torch.as_tensor(logits)
        i, offsets = row["example_idx"], row["offsets"]
        start_l, end_l = logits[:, 0], logits[:, 1]
        null[i] = min(null[i], float(start_l[0] + end_l[0]))
        k = min(span_qa.N_BEST, len(offsets))
        for s in start_l.topk(k).indices.tolist():
            if offsets[s][0] < 0:
                continue
            for e in end_l.topk(k).indices.tolist():
                if offsets[e][0] < 0 or e < s or e - s + 1 > span_qa.MAX_ANSWER_TOKENS:
                    continue
                value = float(start_l[s] + end_l[e])
                if value > best[i][0]:
                    best[i] = (value, examples[i]["context"][offsets[s][0] : offsets[e][1]].strip())
    if spec.options.get("version_2"):
        return [text if value > null[i] else "" for i, (value, text) in enumerate(best)]
    return [text for _, text in best]


def _random_qa_windows(rng, n_examples):
    """Examples of 10-80 words, each cut into 1-4 windows: [CLS] question [SEP] context piece [SEP]."""
    examples, rows = [], []
    for i in range(n_examples):
        words = [f"w{j}" for j in range(rng.integers(10, 80))]
        context = " ".join(words)
        starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
        spans = [[int(s), int(s) + len(w)] for s, w in zip(starts, words)]
        examples.append({"id": str(i), "context": context})
        for _ in range(rng.integers(1, 5)):
            a = int(rng.integers(0, len(words)))
            piece = spans[a : a + int(rng.integers(1, 60))]
            question = [[-1, -1]] * int(rng.integers(2, 12))  # [CLS], question tokens, [SEP]
            rows.append({"example_idx": i, "offsets": question + piece + [[-1, -1]]})
    return examples, rows


@pytest.mark.parametrize("kind", ["normal", "ties", "constant", "null_wins", "nan"])
@pytest.mark.parametrize("version_2", [False, True])
def test_span_qa_decode_matches_the_loop_it_replaced(kind, version_2):
    rng = np.random.default_rng([len(kind), version_2])
    gen = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
    spec = TaskSpec(name="t_qa_ref", family="span_qa", options={"version_2": version_2})
    examples, rows = _random_qa_windows(rng, 40)
    logits = [torch.randn(len(r["offsets"]), 2, generator=gen) for r in rows]
    if kind == "ties":  # coarse values: many exactly equal span scores, within and across windows
        logits = [torch.round(x * 2) / 2 for x in logits]
    elif kind == "constant":  # every span ties; a window of only question tokens has no valid span at all
        logits = [torch.zeros_like(x) for x in logits]
        rows[0]["offsets"] = [[-1, -1]] * len(rows[0]["offsets"])
    elif kind == "null_wins":  # the null score beats the spans of about half the examples
        for x in logits:
            x[0] += float(rng.choice([-5.0, 5.0]))
    elif kind == "nan":
        for x in logits[::3]:
            x[int(rng.integers(len(x))), int(rng.integers(2))] = float("nan")
    got = span_qa.decode(logits, rows, examples, spec)
    assert got == _reference_qa_decode(logits, rows, examples, spec)
    empty = sum(p == "" for p in got)
    if version_2 and kind == "constant":  # a null score equal to the best span wins
        assert empty == len(got)
    elif version_2 and kind == "null_wins":
        assert 0 < empty < len(got)
    else:  # mostly real answers
        assert empty < len(got) / 4


def test_span_qa_decode_hand_computed_window_choice():
    """Within a window the higher start + end wins; across windows a tie keeps the earlier window."""
    spec = TaskSpec(name="t_qa_hand", family="span_qa")
    ex = [{"id": "a", "context": "red green blue"}]
    offsets = [[-1, -1], [0, 3], [4, 9], [10, 14], [-1, -1]]
    rows = [{"example_idx": 0, "offsets": offsets}, {"example_idx": 0, "offsets": offsets}]
    first = torch.tensor([[9.0, 9.0], [1.0, 0.0], [3.0, 0.5], [0.0, 2.0], [9.0, 9.0]])  # [SEP]/[CLS] may not win
    second = torch.tensor([[0.0, 0.0], [5.0, 0.0], [0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])  # 5 + 0 == 3 + 2: a tie
    assert span_qa.decode([first], rows[:1], ex, spec) == ["green blue"]
    assert span_qa.decode([first, second], rows, ex, spec) == ["green blue"]
    second[1, 1] = 0.5  # "red" alone: 5.5 > 5
    assert span_qa.decode([first, second], rows, ex, spec) == ["red"]
    # an end before its start, or a span longer than MAX_ANSWER_TOKENS, is never chosen
    back = torch.tensor([[0.0, 0.0], [0.0, 9.0], [0.0, 0.0], [9.0, 0.0], [0.0, 0.0]])
    assert span_qa.decode([back], rows[:1], ex, spec) == ["blue"]  # best valid: start 3 (9) + end 3 (0)


def test_pad_fills_rows_and_keeps_long_dtype():
    from xstilts.families.base import pad

    seqs = [[5, 6, 7], [1], [], [2, 3]]
    out = pad(seqs, -100)
    assert out.dtype == torch.long
    assert out.tolist() == [[5, 6, 7], [1, -100, -100], [-100, -100, -100], [2, 3, -100]]


@pytest.mark.parametrize("family", ["classification", "multiple_choice", "span_qa", "tagging", "retrieval", "mlm"])
def test_collate_needs_only_the_declared_columns(tok, family):
    """Training and prediction read only ``COLLATE_COLUMNS``: collate must give the same batch from them."""
    import datasets

    from xstilts.families import get_family
    from xstilts.families.base import collate_view, take

    spec = TaskSpec(name=f"t_cols_{family}", family=family, labels=("a", "b"), options={"vocab_size": len(tok)})
    context = "the cat sat on the mat and the dog ate bread " * 4
    examples = {
        "classification": [{"text_a": "the cat", "text_b": "a dog", "label": "a"}, {"text_a": "bread", "label": "b"}],
        "multiple_choice": [{"context": "the cat", "question": "what", "choices": ["sat", "ran"], "label": 1}],
        "span_qa": [{"id": "q", "question": "who ate", "context": context,
                     "answers": {"text": ["dog"], "answer_start": [context.index("dog")]}}],
        "tagging": [{"tokens": ["the", "cat", "sat"] * 8, "tags": ["a", "b", "a"] * 8}],
        "retrieval": [{"text": "the cat sat"}, {"text": "a dog"}],
        "mlm": [{"text": context}],
    }[family]
    fam = get_family(family)
    cols = fam.featurize(examples, tok, spec, 16, None)
    cols["length"] = [len(x) for x in cols["input_ids"]]
    rows = datasets.Dataset.from_dict(cols)
    idx = np.arange(len(rows))[::-1]
    lean = take(collate_view(rows, fam), idx)
    assert set(lean[0]) == set(fam.COLLATE_COLUMNS) and set(fam.COLLATE_COLUMNS) < set(rows.column_names)
    torch.manual_seed(0)
    full = fam.collate(take(rows, idx), TokenIds.of(tok))
    torch.manual_seed(0)
    narrow = fam.collate(lean, TokenIds.of(tok))
    assert full.keys() == narrow.keys() and all(torch.equal(full[k], narrow[k]) for k in full)


@pytest.mark.parametrize("family", ["span_qa", "tagging"])
def test_featurized_in_shards_gives_the_rows_of_one_chunk(tok, tmp_path, monkeypatch, family):
    """``featurized`` cuts examples into CHUNK-sized Arrow shards: example_idx and the QA window overlap
    (set by the longest question of the whole set) must not depend on where the cuts fall."""
    from xstilts import data

    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "mat", "dog", "ate", "bread"]
    if family == "span_qa":
        spec = TaskSpec(name="t_shards_qa", family="span_qa")
        examples = []
        for i in range(7):
            context = " ".join(rng.choice(words, int(rng.integers(5, 40))))
            question = " ".join(rng.choice(words, 12 if i == 5 else 2))  # one long question, in a late chunk
            examples.append({"id": str(i), "question": question, "context": context,
                             "answers": {"text": [context[:3]], "answer_start": [0]}})
    else:
        spec = TaskSpec(name="t_shards_tag", family="tagging", labels=("a", "b"))
        examples = [{"tokens": list(rng.choice(words, int(rng.integers(3, 30)))), "tags": None} for _ in range(7)]
    kw = dict(max_length=24, source_key="shards", stride=16)  # the long question cuts the overlap to fit
    whole = data.featurized(spec, examples, tok, cache_dir=tmp_path / "whole", **kw)
    monkeypatch.setattr(data, "CHUNK", 3)  # shards of 3, 3 and 1 examples
    sharded = data.featurized(spec, examples, tok, cache_dir=tmp_path / "sharded", **kw)
    assert len(whole) > len(examples) and sharded.to_dict() == whole.to_dict()


@pytest.mark.parametrize("spec, metrics", [
    (TaskSpec(name="m_cls", family="classification", labels=("a", "b")), ("f1",)),
    (TaskSpec(name="m_pos", family="tagging", labels=("X",)), ("precision",)),  # POS: accuracy and F1 only
    (TaskSpec(name="m_qa", family="span_qa"), ("exact",)),  # SQuAD v2's name on a v1 task
    (TaskSpec(name="m_ret", family="retrieval", options={"kind": "lareqa"}), ("accuracy",)),
    (TaskSpec(name="m_none", family="classification", labels=("a",)), ()),
])
def test_registering_a_metric_the_family_does_not_compute_fails(spec, metrics):
    import dataclasses

    with pytest.raises(ConfigError, match=f"task '{spec.name}': .*the {spec.family} family computes"):
        register(dataclasses.replace(spec, metrics=metrics))
    with pytest.raises(ConfigError, match="unknown task"):
        get(spec.name)  # nothing was registered


def test_metric_names_are_the_keys_each_family_scores():
    """What ``metric_names`` declares is what ``score`` returns (span QA v1 / v2 / MLQA, POS / NER, choice)."""
    from xstilts.families import classification

    qa = [{"id": "q1", "answers": {"text": ["a cat"]}}, {"id": "q2", "answers": {"text": ["the dog"]}}]
    cases = [
        (classification, TaskSpec(name="c", family="classification"), ["x"], [{"label": "x"}]),
        (multiple_choice, TaskSpec(name="mc", family="multiple_choice"), [1], [{"label": 1}]),
        (span_qa, TaskSpec(name="qa1", family="span_qa"), ["a cat", ""], qa),
        (span_qa, TaskSpec(name="qa2", family="span_qa", options={"version_2": True}), ["a cat", ""], qa),
        (span_qa, TaskSpec(name="qa3", family="span_qa", options={"mlqa_normalisation": True}), ["a cat", ""], qa),
        (tagging, TaskSpec(name="pos", family="tagging"), [["NOUN"]], [{"tags": ["NOUN"]}]),
        (tagging, TaskSpec(name="ner", family="tagging", options={"scheme": "iob2"}), [["B-PER"]],
         [{"tags": ["B-PER"]}]),
    ]
    for fam, spec, preds, examples in cases:
        assert set(fam.score(preds, examples, spec, "en")) == set(fam.metric_names(spec)), spec.name
    for name in ("xnli", "udpos", "panx", "xquad", "mlqa", "tydiqa", "squad_v2", "tatoeba", "bucc2018", "lareqa"):
        spec = get(name)
        assert spec.primary_metric == spec.metrics[0]
        assert set(spec.metrics) <= set(get_family(spec.family).metric_names(spec))


# ---------------------------------------------------------------- the Family protocol


@pytest.mark.parametrize("name", __import__("xstilts.tasks.spec", fromlist=["FAMILIES"]).FAMILIES)
def test_every_family_implements_the_whole_protocol(name):
    from xstilts.families import PROTOCOL, Family, missing

    module = get_family(name)
    assert missing(module) == [], name
    assert isinstance(module, Family)  # runtime_checkable: every member is there
    assert set(PROTOCOL) >= {"featurize", "collate", "make_head", "loss_and_logits", "decode", "score",
                             "write_submission", "prediction_record", "per_example_scores", "from_hub"}
    assert module.TRANSLATION in ("fields", "spans", None)
    assert bool(module.TRANSLATION) == bool(module.TRANSLATABLE_FIELDS)
    assert set(module.OPTIONAL_FIELDS) <= set(module.HUB_FIELDS)
    assert set(module.REQUIRED_FIELDS) <= set(module.HUB_FIELDS)


def test_a_module_missing_protocol_members_is_named():
    import types

    from xstilts.families import missing

    fake = types.ModuleType("fake")
    fake.__dict__.update({k: v for k, v in vars(tagging).items() if k not in ("decode", "TRAINS")})
    fake.POOLED_HEAD = "yes"
    assert missing(fake) == ["decode (absent)", "TRAINS (absent)", "POOLED_HEAD (not <class 'bool'>)"]


def test_retrieval_refuses_training_with_a_clear_error():
    from xstilts.errors import XstiltsError
    from xstilts.families import retrieval

    spec = get("tatoeba")
    assert not retrieval.TRAINS
    with pytest.raises(XstiltsError, match="retrieval tasks are not trained"):
        retrieval.make_head(8, spec)
    with pytest.raises(XstiltsError, match="not trained"):
        retrieval.loss_and_logits(None, None, {})
    with pytest.raises(XstiltsError, match="not straight on the encoder"):
        get_family("classification").score_encoder(get("xnli"), "test", "de", None, None)


def test_hub_conversion_per_family():
    from xstilts.families.base import BadField

    xnli, pos = get("xnli"), get("udpos")
    fam = get_family("classification")
    assert fam.from_hub({"text_a": "a", "text_b": None, "label": -1}, xnli) is None
    assert fam.from_hub({"text_a": "a", "text_b": None, "label": "entailment"}, xnli)["label"] == "entailment"
    with pytest.raises(BadField, match="unknown label 'x'"):
        fam.from_hub({"text_a": "a", "text_b": None, "label": "x"}, xnli)
    assert multiple_choice.from_hub({"choices": ("a", "b"), "label": "1"}, None) == {"choices": ["a", "b"], "label": 1}
    assert multiple_choice.from_hub({"choices": ["a"], "label": ""}, None) is None
    with pytest.raises(BadField) as bad:
        tagging.from_hub({"tokens": ("a",), "tags": ("NOPE",)}, pos)
    assert bad.value.field == "tags"
    got = span_qa.from_hub({"id": 7, "answers": {"text": ("x",), "answer_start": (0,)}}, None)
    assert got == {"id": "7", "answers": {"text": ["x"], "answer_start": [0]}}
    assert get_family("retrieval").hub_records([{"source": "s1", "target": "t1"}, {"source": "s2", "target": "t2"}]) \
        == [{"source": ["s1", "s2"], "target": ["t1", "t2"]}]


def test_prediction_records_and_per_example_scores():
    ex = [{"id": "q1", "label": 0}, {"id": "q2", "label": 1}]
    assert span_qa.prediction_record(["a", "b"], ex) == {"q1": "a", "q2": "b"}
    assert span_qa.per_example_scores(["a", "b"], ex) is None
    assert multiple_choice.prediction_record([0, 0], ex) == [0, 0]
    assert multiple_choice.per_example_scores([0, 0], ex) == [1.0, 0.0]
    assert get_family("classification").per_example_scores([1, 1], ex) == [0.0, 1.0]
    assert tagging.per_example_scores([["X"]], [{"tags": ["X"]}]) is None
    assert tagging.labels_used([{"tags": ["B", "A"]}, {"tags": ["A"]}]) == {"A", "B"}
    assert get_family("classification").labels_used([{"label": "y"}, {"label": "n"}]) == {"n", "y"}


def test_write_submission_layouts(tmp_path):
    path, warning = span_qa.write_submission({"q1": "a"}, None, tmp_path / "test-de")
    assert path == tmp_path / "test-de.json" and warning is None and path.read_text() == '{"q1": "a"}'
    path, warning = span_qa.write_submission(["a", "b"], ["x", "y"], tmp_path / "test-es")
    assert path.read_text() == '{"x": "a", "y": "b"}' and warning is None
    path, warning = span_qa.write_submission(["a"], None, tmp_path / "test-fr")
    assert path.read_text() == '{"0": "a"}' and "example positions" in warning
    path, warning = tagging.write_submission([["A", "B"], ["C"]], None, tmp_path / "test-de")
    assert path == tmp_path / "test-de.tsv" and path.read_text() == "A\nB\n\nC\n\n" and warning is None
    path, warning = get_family("classification").write_submission(["entailment", "neutral"], None, tmp_path / "x")
    assert path.read_text() == "entailment\nneutral\n" and warning is None


def test_the_config_family_list_is_the_registry_one():
    from pydantic import ValidationError

    from xstilts.config import TaskDef
    from xstilts.tasks.spec import FAMILIES

    for name in FAMILIES:
        assert TaskDef(name="t", family=name, files={}).family == name
    with pytest.raises(ValidationError, match="unknown family 'taging'"):
        TaskDef(name="t", family="taging", files={})


def test_no_family_name_is_compared_outside_families():
    import re
    from pathlib import Path

    import xstilts
    from xstilts.tasks.spec import FAMILIES

    names = "|".join(FAMILIES)
    compare = re.compile(rf"""(==|!=)\s*["']({names})["']|["']({names})["']\s*(==|!=|in\b|not\s+in\b)"""
                         rf"""|\bin\s*[([{{]\s*["']({names})["']""")
    root = Path(xstilts.__file__).parent
    allowed = {"families"}
    found = [f"{p.relative_to(root)}:{n}" for p in sorted(root.rglob("*.py"))
             if p.relative_to(root).parts[0] not in allowed
             for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if compare.search(line)]
    assert found == []


def test_a_new_family_is_one_module_plus_its_name(tmp_path, tiny_model, toy_data, monkeypatch):
    """Adding a family = a module in xstilts.families + its name in FAMILIES + a task: a copy of classification
    under another name runs the whole pipeline (head, pooling, prediction file, per-example scores) unchanged."""
    import json
    import sys
    import types

    from conftest import TOY_TASKS
    from xstilts import config, pipeline
    from xstilts.families import classification
    from xstilts.tasks import registry
    from xstilts import families

    toy = types.ModuleType("xstilts.families.toy_family")
    toy.__dict__.update({k: v for k, v in vars(classification).items() if not k.startswith("__")})
    toy.TITLE = "toy family"
    monkeypatch.setitem(sys.modules, "xstilts.families.toy_family", toy)
    monkeypatch.setattr(families, "FAMILIES", families.FAMILIES + ("toy_family",))
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))  # the new task leaves with the test
    task = {**TOY_TASKS[1], "name": "toy_topic_new_family", "family": "toy_family", "languages": ["en", "de"]}
    train = {"lr": 1e-3, "batch_size": 16, "max_steps": 2, "eval_every": 2, "max_length": 32}
    cfg = config.validate({"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(tmp_path / "w"),
                           "tasks": [task], "target": {"tasks": [task["name"]], "seeds": [0], "train": train}})
    result = pipeline.run(cfg, log=lambda m: None)
    assert get_family("toy_family") is toy
    assert {(r["lang"], r["metric"]) for r in result.rows} >= {("en", "accuracy"), ("de", "accuracy")}
    ev = result.phases[-1]
    assert len(ev.summary["example_scores"]["de"]) == 40  # per-example scores, as classification's
    assert len(json.loads((ev.path / "predictions" / "de.json").read_text())) == 40
