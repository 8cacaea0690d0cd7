"""Family contracts on a tiny tokenizer: windows, label alignment, decoding, collate shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xstilts.data import TokenIds, length_grouped_batches, mixture_probabilities
from xstilts.errors import ConfigError
from xstilts.families import multiple_choice, span_qa, tagging
from xstilts.tasks import TaskSpec, get, register


@pytest.fixture(scope="module")
def tok(tiny_model):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model)


def test_registry_rejects_duplicates_and_suggests_close_names():
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


def test_hub_rows_map_onto_family_fields(monkeypatch):
    """Users with a hub: `datasets.load_dataset(name, config)` rows become family records (hub faked here)."""
    import datasets

    from xstilts.data import load_examples

    calls = []

    def fake_load(name, config, split):
        calls.append((name, config, split))
        return datasets.Dataset.from_dict({"premise": ["a", "b", "c"], "hypothesis": ["x", "y", "z"], "label": [0, 2, -1]})

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    rows = load_examples(get("xnli"), "dev", "de", data_dir=None)
    assert calls == [("xnli", "de", "validation")]
    assert rows == [{"text_a": "a", "text_b": "x", "label": "entailment"},
                    {"text_a": "b", "text_b": "y", "label": "contradiction"}]  # -1 (no gold label) is skipped
