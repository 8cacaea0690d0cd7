"""Sentence retrieval (Tatoeba, BUCC, LAReQA): no head and no training.

Sentences are embedded by mean-pooling the hidden states of one encoder layer
(XTREME used a middle layer: 14 of 24 for XLM-R large) and compared by cosine
similarity. Scored straight on the phase-2 encoder.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import metrics
from ..errors import XstiltsError
from .base import accept_example as check_example, as_list as prediction_record, batch_inputs
from .base import keep_stride as effective_stride, no_labels as labels_used
from .base import no_per_example_scores as per_example_scores, no_reader_kwargs as reader_kwargs
from .base import not_probed, one_per_line as write_submission

TITLE = "retrieval"
REQUIRED_FIELDS = ("source", "target")  # an aligned split (Tatoeba) as one record of two lists
OPTIONAL_FIELDS: dict = {}
HUB_FIELDS = REQUIRED_FIELDS  # a hub row is one aligned pair
NEEDS_LABELS = False
TRAINS = False  # scored straight on the encoder (score_encoder); the pipeline trains no target phase
POOLED_HEAD = False
READS_EVERY_ROW = False
TRANSLATION = None
TRANSLATABLE_FIELDS = ()
NOT_TRANSLATABLE_REASON = ""
FEATURIZE_VERSION = 1
NOT_TRAINED = "retrieval tasks are not trained: they are scored straight on the encoder (score_encoder)"


def from_hub(record, spec):
    return record


def hub_records(records: list[dict]) -> list[dict]:
    """Hub rows are aligned pairs; the split comes back as one ``{"source": [...], "target": [...]}`` record."""
    return [{"source": [p["source"] for p in records], "target": [p["target"] for p in records]}]


def count_examples(spec, split, lang, path_of, load) -> int:
    """Queries (aligned pairs, BUCC gold pairs, LAReQA questions, Mewsli-X mentions) or candidates."""
    from .. import io as r

    kind = spec.options.get("kind")
    if kind == "aligned":
        return len(r.read_tatoeba(path_of(split, lang), path_of(f"{split}_target", lang))["source"])
    if kind == "bucc":
        return len(r.read_bucc(path_of(split, lang), path_of(f"{split}_target", lang),
                               path_of(f"{split}_gold", lang))["gold"])
    if kind == "lareqa":
        return len(r.read_xquad_r(path_of(split, lang))["questions"])
    if split == "candidates":
        return len(r.read_mewsli_x_entities(path_of(split, lang)))
    return len(r.read_mewsli_x(path_of(split, lang)))


def featurize(examples, tokenizer, spec, max_length, stride=None):
    """``examples``: ``{"text": str}`` records, one per sentence to embed."""
    enc = tokenizer([e["text"] for e in examples], truncation=True, max_length=max_length)
    return {"input_ids": enc["input_ids"], "example_idx": list(range(len(examples)))}


def make_head(hidden_size, spec, vocab_size=None, input_embeddings=None):
    raise XstiltsError(f"task {spec.name!r}: {NOT_TRAINED}")


def loss_and_logits(head, hidden, batch):
    raise XstiltsError(NOT_TRAINED)


probe_features = not_probed("retrieval tasks have no labels to probe (they are scored on the encoder)")


def decode(logits_rows, rows, examples, spec):
    raise XstiltsError(f"task {spec.name!r}: retrieval has no head to decode; {NOT_TRAINED}")


def score(predictions, examples, spec, lang):
    raise XstiltsError(f"task {spec.name!r}: retrieval is scored by score_encoder (embeddings), not from predictions")


COLLATE_COLUMNS = ("input_ids",)


def collate(rows, tok):
    return batch_inputs(rows, tok.pad_id)


def resolve_layer(layer, n_layers: int) -> int:
    """Index into ``hidden_states`` (0 = embeddings). ``"middle"`` is XTREME's choice."""
    if layer in (None, "middle"):
        return max(1, round(n_layers * 14 / 24))
    layer = int(layer)
    return layer if layer >= 0 else n_layers + 1 + layer


@torch.no_grad()
def mean_pool(hidden_states: tuple, attention_mask: torch.Tensor, layer: int) -> torch.Tensor:
    h = hidden_states[layer].float()
    m = attention_mask[..., None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


KIND_METRICS = {"aligned": ("accuracy",), "bucc": ("precision", "recall", "f1", "threshold"),
                "lareqa": ("map@20",), "mewsli": ("map@20",)}


def metric_names(spec) -> tuple[str, ...]:
    """What :func:`evaluate` returns for the task's retrieval ``kind`` (option; default ``aligned``)."""
    return KIND_METRICS.get(spec.options.get("kind", "aligned"), ())


def score_encoder(spec, split: str, lang: str, path_of, embed, *, limit: int | None = None,
             per_example: list | None = None, aligned=None) -> dict[str, float]:
    """Score one language of a retrieval task.

    Args:
        path_of: ``(split, lang) -> Path`` of the task's files (``split`` may be
            ``"<split>_target"`` / ``"<split>_gold"`` / ``"candidates"``).
        embed: ``(texts, key) -> np.ndarray`` of pooled sentence embeddings.
        limit: aligned (Tatoeba) only: score the first ``limit`` sentence pairs
            (the others are not candidates either, so the task gets easier).
        per_example: aligned only: extended with 1.0/0.0 per query, i.e. per English sentence
            (for paired tests).
        aligned: ``(split, lang) -> {"source", "target"}`` for aligned tasks (files or the hub,
            :func:`xstilts.data.load_aligned`); default: the files of ``path_of``.
    """
    from .. import io as readers

    kind = spec.options.get("kind", "aligned")
    if kind == "aligned":  # Tatoeba (as XTREME): the nearest xx sentence of each English sentence must be its translation
        data = aligned(split, lang) if aligned else readers.read_tatoeba(path_of(split, lang), path_of(f"{split}_target", lang))
        source, target = data["source"][:limit], data["target"][:limit]
        src, tgt = embed(source, f"{lang}-src"), embed(target, f"{lang}-tgt")
        hits = metrics.tatoeba_hits(src, tgt)
        if per_example is not None:
            per_example.extend(float(h) for h in hits)
        return {"accuracy": float(np.mean(hits))}
    if kind == "bucc":  # threshold tuned for F1 on dev, applied to the evaluated split
        def mine(s):
            d = readers.read_bucc(path_of(s, lang), path_of(f"{s}_target", lang), path_of(f"{s}_gold", lang))
            sid, tid = list(d["source"]), list(d["target"])
            stext, ttext = [d["source"][i] for i in sid], [d["target"][i] for i in tid]
            # as XTREME: identical texts merged before mining, texts under two ids dropped
            pairs = metrics.bucc_mine(embed(stext, f"{s}-{lang}-src"), embed(ttext, f"{s}-{lang}-tgt"), sid, tid,
                                      k=4, mode="max", src_texts=stext, tgt_texts=ttext)
            return pairs, d["gold"]
        dev_pairs, dev_gold = mine("dev")
        threshold, _ = metrics.bucc_best_threshold(dev_pairs, dev_gold)
        pairs, gold = (dev_pairs, dev_gold) if split == "dev" else mine(split)
        return {**metrics.bucc_f1(pairs, gold, threshold), "threshold": float(threshold)}
    if kind == "lareqa":  # questions of one language against answer sentences pooled over every language
        pool, relevant_by_qid, questions = [], {}, []
        for other in spec.languages:
            d = readers.read_xquad_r(path_of(split, other), id_prefix=f"{other}:")
            pool += d["sentences"]
            for q in d["questions"]:
                relevant_by_qid.setdefault(q["id"], set()).update(q["answer_sentence_ids"])
                if other == lang:
                    questions.append(q)
        cand = embed([s["text"] for s in pool], f"{split}-pool")
        query = embed([q["question"] for q in questions], f"{split}-{lang}-q")
        ids = [s["id"] for s in pool]
        top = metrics.lareqa_rankings(query, cand, 20)  # XTREME-R's ranking and tie order
        rankings = [[ids[j] for j in row] for row in top]
        return {"map@20": metrics.map_at_k(rankings, [relevant_by_qid[q["id"]] for q in questions], k=20)}
    if kind == "mewsli":  # mentions of one language against the multilingual entity candidate set
        mentions = [m for m in readers.read_mewsli_x(path_of(split, lang)) if m.get("language", lang) == lang]
        entities = readers.read_mewsli_x_entities(path_of("candidates", lang))
        cand = embed([f"{e['title']} {e.get('description', '')}".strip() for e in entities], "mewsli-candidates")
        query = embed([m["context"][max(0, m["start"] - 200): m["end"] + 200] for m in mentions], f"{split}-{lang}-m")
        ids = [e["entity_id"] for e in entities]
        top = metrics.retrieval_rankings(query, cand, 20)
        return {"map@20": metrics.map_at_k([[ids[j] for j in row] for row in top],
                                           [{m["entity_id"]} for m in mentions], k=20)}
    raise ValueError(f"task {spec.name!r}: unknown retrieval kind {kind!r}")


evaluate = score_encoder  # the older name
