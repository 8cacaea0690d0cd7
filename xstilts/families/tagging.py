"""Token tagging (UD-POS, PAN-X NER, CCG supertagging).

Word-level labels go on the first subword of each word; other subwords are
ignored by the loss. A sentence longer than the window is split into several
windows at word boundaries, never truncated: every word is predicted.
"""

from __future__ import annotations

import torch
from torch import nn

from .. import metrics
from pathlib import Path

from .base import BadField, accept_example as check_example, as_list as prediction_record, batch_inputs
from .base import count_loaded as count_examples, keep_records as hub_records, keep_stride as effective_stride
from .base import no_per_example_scores as per_example_scores, no_reader_kwargs as reader_kwargs
from .base import not_encoder_scored as score_encoder, pad

TITLE = "tagging"
REQUIRED_FIELDS = ("tokens", "tags")
OPTIONAL_FIELDS: dict = {}
HUB_FIELDS = REQUIRED_FIELDS
NEEDS_LABELS = True  # a task without labels (CCG supertags) gets the tags its training data uses
TRAINS = True
POOLED_HEAD = False
READS_EVERY_ROW = False
TRANSLATION = None
TRANSLATABLE_FIELDS = ()
NOT_TRANSLATABLE_REASON = ("tagging tasks cannot be machine-translated: their labels belong to source words, and "
                           "a translation has other words in another order (there is no label-preserving "
                           "translation); use the English task, or a tagging task with data in the target language")
FEATURIZE_VERSION = 1
IGNORE = -100


def from_hub(record, spec):
    record["tokens"], record["tags"] = list(record["tokens"]), list(record["tags"])
    bad = [t for t in record["tags"] if spec.labels and t not in spec.labels]
    if bad:
        raise BadField("tags", f"unknown tag {bad[0]!r}; tags: {', '.join(spec.labels)}")
    return record


def labels_used(examples) -> set:
    return {t for e in examples for t in e["tags"]}


def _windows(word_pieces: list[list[int]], budget: int) -> list[tuple[int, int]]:
    """Split words into consecutive [start, end) runs whose subwords fit ``budget``."""
    spans, start, used = [], 0, 0
    for w, pieces in enumerate(word_pieces):
        n = min(len(pieces), budget)
        if used + n > budget and w > start:
            spans.append((start, w))
            start, used = w, 0
        used += n
    spans.append((start, len(word_pieces)))
    return spans


def featurize(examples, tokenizer, spec, max_length, stride=None):
    tag_ids = {t: i for i, t in enumerate(spec.labels)}
    words = [w for e in examples for w in e["tokens"]]
    # Tokenize every word once, without special tokens; a word that yields no
    # subword (e.g. a lone zero-width char) gets the unknown token so it keeps a slot.
    pieces = tokenizer(words, add_special_tokens=False)["input_ids"] if words else []
    pieces = [p or [tokenizer.unk_token_id] for p in pieces]
    budget = max_length - 2
    cols = {"input_ids": [], "labels": [], "first": [], "example_idx": [], "word_start": []}
    k = 0
    for i, e in enumerate(examples):
        wp = pieces[k : k + len(e["tokens"])]
        k += len(e["tokens"])
        tags = e.get("tags")
        for s, t in _windows(wp, budget):
            ids, labels, first = [tokenizer.cls_token_id], [IGNORE], [0]
            for w in range(s, t):
                p = wp[w][:budget]  # a single word longer than the window keeps its first subwords
                ids += p
                labels += [tag_ids.get(tags[w], IGNORE) if tags else IGNORE] + [IGNORE] * (len(p) - 1)
                first += [1] + [0] * (len(p) - 1)
            ids.append(tokenizer.sep_token_id)
            labels.append(IGNORE)
            first.append(0)
            cols["input_ids"].append(ids)
            cols["labels"].append(labels)
            cols["first"].append(first)
            cols["example_idx"].append(i)
            cols["word_start"].append(s)
    return cols


class TokenHead(nn.Module):
    def __init__(self, hidden: int, n_out: int, dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_out)

    def forward(self, hidden):
        return self.out(self.dropout(hidden))


def make_head(hidden_size, spec, vocab_size=None, input_embeddings=None):
    return TokenHead(hidden_size, len(spec.labels))


COLLATE_COLUMNS = ("input_ids", "labels", "first")


def collate(rows, tok):
    batch = batch_inputs(rows, tok.pad_id)
    batch["labels"] = pad([r["labels"] for r in rows], IGNORE)
    batch["first"] = pad([r["first"] for r in rows], 0).bool()
    return batch


def loss_and_logits(head, hidden, batch):
    logits = head(hidden)
    labels = batch.get("labels")
    loss = None
    if labels is not None and (labels != IGNORE).any():
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=IGNORE)
    # Keep only first-subword positions so each row's prediction is per word.
    first = batch["first"]
    preds = [logits[i][first[i]].argmax(-1) for i in range(len(first))]
    return loss, preds


def probe_features(hidden, batch):
    """Each labelled word's first-subword state and its tag id."""
    keep = batch["labels"] != IGNORE
    return hidden[keep], batch["labels"][keep]


def decode(logits_rows, rows, examples, spec):
    out = [[None] * len(e["tokens"]) for e in examples]
    for pred, row in zip(logits_rows, rows):
        words = out[row["example_idx"]]
        for j, p in enumerate(torch.as_tensor(pred).tolist()):
            words[row["word_start"] + j] = spec.labels[p]
    return out


def metric_names(spec) -> tuple[str, ...]:
    return ("f1", "precision", "recall") if spec.options.get("scheme") == "iob2" else ("accuracy", "f1")


def score(predictions, examples, spec, lang):
    gold = [e["tags"] for e in examples]
    if spec.options.get("scheme") == "iob2":
        return metrics.tagging_f1(predictions, gold)
    return {"accuracy": metrics.pos_accuracy(predictions, gold), "f1": metrics.pos_f1(predictions, gold)}


def write_submission(preds, ids, dest_stem: Path) -> tuple[Path, None]:
    """``<stem>.tsv``: one tag per token line, a blank line after each sentence."""
    out = Path(f"{dest_stem}.tsv")
    out.write_text("".join("".join(f"{t}\n" for t in sent) + "\n" for sent in preds), encoding="utf-8")
    return out, None
