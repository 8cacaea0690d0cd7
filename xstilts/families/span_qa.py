"""Extractive span QA (SQuAD v1.1/v2.0, XQuAD, MLQA, TyDiQA-GoldP).

Long contexts are cut into windows of ``max_length`` tokens that overlap by
``stride`` tokens. Training labels a window with the answer's token span, or
with the first token when the answer is not inside the window. Decoding takes,
per example, the best-scoring valid span over all of its windows; with
``options.version_2`` the no-answer score (first token) competes with it.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import metrics
import json
from pathlib import Path

from .base import accept_example as check_example, batch_inputs, count_loaded as count_examples
from .base import keep_records as hub_records, no_labels as labels_used, no_per_example_scores as per_example_scores
from .base import no_reader_kwargs as reader_kwargs, not_encoder_scored as score_encoder

TITLE = "span QA"
REQUIRED_FIELDS = ("id", "question", "context", "answers")
OPTIONAL_FIELDS: dict = {}
HUB_FIELDS = REQUIRED_FIELDS
NEEDS_LABELS = False
TRAINS = True
POOLED_HEAD = False
READS_EVERY_ROW = False
TRANSLATION = "spans"  # mark and translate: xstilts.translate.translate_span_qa
TRANSLATABLE_FIELDS = ("question", "context")
NOT_TRANSLATABLE_REASON = ""
FEATURIZE_VERSION = 1
N_BEST = 20
MAX_ANSWER_TOKENS = 30


def _questions(examples, tokenizer, max_length):
    """Questions cut to at most half the window, so every window keeps room for context."""
    questions = [e["question"].lstrip() for e in examples]
    enc = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    cap = max_length // 2
    out = [q if len(ids) <= cap else q[: off[cap - 1][1]] for q, ids, off in zip(questions, enc["input_ids"], enc["offset_mapping"])]
    return out, min(cap, max((len(i) for i in enc["input_ids"]), default=0))


def from_hub(record, spec):
    record["id"] = str(record["id"])
    answers = record["answers"]
    record["answers"] = {"text": list(answers["text"]), "answer_start": list(answers["answer_start"])}
    return record


def effective_stride(examples, tokenizer, max_length, stride=None) -> int:
    """The overlap must be shorter than the context part of a window (window - question - 4 special tokens)."""
    _, longest = _questions(examples, tokenizer, max_length)
    room = max_length - longest - 4
    return min(stride if stride is not None else max_length // 4, max(0, room - 1))


def featurize(examples, tokenizer, spec, max_length, stride=None):
    questions, _ = _questions(examples, tokenizer, max_length)
    stride = effective_stride(examples, tokenizer, max_length, stride)
    enc = tokenizer(
        questions,
        [e["context"] for e in examples],
        truncation="only_second",
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    cols = {"input_ids": [], "start": [], "end": [], "offsets": [], "example_idx": []}
    for f, ids in enumerate(enc["input_ids"]):
        i = enc["overflow_to_sample_mapping"][f]
        seq = enc.sequence_ids(f)
        offsets = [list(o) if s == 1 else [-1, -1] for o, s in zip(enc["offset_mapping"][f], seq)]
        ctx = [t for t, s in enumerate(seq) if s == 1]
        start = end = 0
        answers = examples[i].get("answers") or {"text": [], "answer_start": []}
        if answers["text"] and ctx:
            a0 = answers["answer_start"][0]
            a1 = a0 + len(answers["text"][0])
            if offsets[ctx[0]][0] <= a0 and offsets[ctx[-1]][1] >= a1:
                start = next(t for t in ctx if offsets[t][1] > a0)
                end = next(t for t in reversed(ctx) if offsets[t][0] < a1)
        cols["input_ids"].append(ids)
        cols["start"].append(start)
        cols["end"].append(end)
        cols["offsets"].append(offsets)
        cols["example_idx"].append(i)
    return cols


def make_head(hidden_size, spec, vocab_size=None, input_embeddings=None):
    return nn.Linear(hidden_size, 2)


COLLATE_COLUMNS = ("input_ids", "start", "end")  # not offsets / example_idx: decode-only


def collate(rows, tok):
    batch = batch_inputs(rows, tok.pad_id)
    batch["start"] = torch.as_tensor([r["start"] for r in rows])
    batch["end"] = torch.as_tensor([r["end"] for r in rows])
    return batch


def probe_features(hidden, batch):
    """Every real token's state, labelled 1 at the answer start, 2 at its end (1 when it is one token), 0
    elsewhere (a window without the answer points both at position 0)."""
    real = batch["attention_mask"].bool()
    label = torch.zeros(real.shape, dtype=torch.long)
    rows = torch.arange(real.shape[0])
    label[rows, batch["end"]] = 2
    label[rows, batch["start"]] = 1
    return hidden[real], label[real]


def loss_and_logits(head, hidden, batch):
    logits = head(hidden).float()
    # Padding may never be chosen as an answer boundary.
    logits = logits.masked_fill(batch["attention_mask"][..., None] == 0, -1e4)
    loss = None
    if "start" in batch:
        loss = (
            nn.functional.cross_entropy(logits[..., 0], batch["start"])
            + nn.functional.cross_entropy(logits[..., 1], batch["end"])
        ) / 2
    lengths = batch["attention_mask"].sum(1).tolist()
    return loss, [logits[i, :n] for i, n in enumerate(lengths)]


def decode(logits_rows, rows, examples, spec):
    """Per example, the best valid span over all of its windows.

    A window's candidates are its top-``N_BEST`` starts x top-``N_BEST`` ends, valid when both are
    context tokens, end >= start and at most ``MAX_ANSWER_TOKENS`` long, scored start + end logit
    (all k x k in one tensor op). Ties go to the first in (start rank, end rank) order, and to an
    earlier window unless a later one scores strictly higher.
    """
    best = [(float("-inf"), "") for _ in examples]
    null = [float("inf") for _ in examples]
    for logits, row in zip(logits_rows, rows):
        logits = torch.as_tensor(logits)
        i, offsets = row["example_idx"], row["offsets"]
        start_l, end_l = logits[:, 0], logits[:, 1]
        null[i] = min(null[i], float(start_l[0] + end_l[0]))
        k = min(N_BEST, len(offsets))
        (s_val, s_idx), (e_val, e_idx) = start_l.topk(k), end_l.topk(k)
        in_context = torch.as_tensor([o[0] >= 0 for o in offsets])
        length = e_idx[None, :] - s_idx[:, None] + 1
        values = s_val[:, None] + e_val[None, :]
        valid = in_context[s_idx][:, None] & in_context[e_idx][None, :] & (length >= 1) & (length <= MAX_ANSWER_TOKENS)
        values = values.masked_fill(~valid | values.isnan(), float("-inf")).flatten()
        flat = int(values.argmax())  # argmax returns the first maximum
        value = float(values[flat])
        if value > best[i][0]:
            s, e = int(s_idx[flat // k]), int(e_idx[flat % k])
            # strip: some tokenizers' offsets include the space before a word
            best[i] = (value, examples[i]["context"][offsets[s][0] : offsets[e][1]].strip())
    if spec.options.get("version_2"):
        return [text if value > null[i] else "" for i, (value, text) in enumerate(best)]
    return [text for _, text in best]


SQUAD_V2_METRICS = ("exact", "f1", "total", "HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1",
                    "NoAns_total")


def metric_names(spec) -> tuple[str, ...]:
    return SQUAD_V2_METRICS if spec.options.get("version_2") else ("exact_match", "f1")


def score(predictions, examples, spec, lang):
    preds = {e["id"]: p for e, p in zip(examples, predictions)}
    refs = {e["id"]: list(e["answers"]["text"]) for e in examples}
    if spec.options.get("version_2"):
        return metrics.squad_v2(preds, refs)
    if spec.options.get("mlqa_normalisation"):
        return metrics.mlqa(preds, refs, lang)
    return metrics.squad_v1(preds, refs)


def prediction_record(predictions, examples) -> dict:
    """Answers keyed by question id (the XTREME submission layout)."""
    return {e["id"]: p for e, p in zip(examples, predictions)}


def write_submission(preds, ids, dest_stem: Path) -> tuple[Path, str | None]:
    """``<stem>.json``: ``{question id: answer}``; without saved ids the keys are example positions (warned)."""
    warning = None
    if isinstance(preds, dict):
        answers = preds
    elif ids is not None:
        answers = dict(zip(ids, preds))
    else:
        answers = {str(i): a for i, a in enumerate(preds)}
        warning = "no example ids saved: keys are example positions"
    out = Path(f"{dest_stem}.json")
    out.write_text(json.dumps(answers, ensure_ascii=False), encoding="utf-8")
    return out, warning
