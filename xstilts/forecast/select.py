"""``xstilts forecast TARGET --candidates a,b,c``: rank intermediate tasks for a target before training them.

Selectors (each returns a score per candidate, higher = forecast better; ``None`` = cannot score it):

* ``embedding-en`` (TextEmb / SEmb-style dataset embeddings, Vu et al. 2020; Poth et al. 2021): cosine
  similarity between the mean-pooled base-encoder embedding of the candidate's English training text and
  of the target's English training text;
* ``embedding-xx``: the same against unlabeled target-language text (the inputs of the target's evaluation
  split in its non-English languages; their labels are dropped before any selector sees them);
* ``logme`` (You et al. 2021, :mod:`xstilts.forecast.logme`): LogME of the target's English training labels
  on features of each candidate's intermediate-trained encoder (the phase output is reused when the
  workdir has it; otherwise the candidate "needs training" and is not scored); ``none`` = the base encoder;
* ``en-dev-short``: the English-dev rule of the latency study on a budget: each candidate's intermediate-trained
  encoder (``none`` = the base encoder) is fine-tuned on the target's English training data for
  ``short_fraction`` of the target phase's epochs (one seed) and scored on the target's English dev set. Like
  ``logme`` it needs the candidates' intermediate phases; the short fine-tunes keep no weights (done.json only);
* ``largest-first``: the candidate's number of English training examples.

Neither similarity selector can score ``none`` (it has no data): they rank it last. The full English-dev rule
(every candidate trained and fine-tuned to the end) is scored from a grid's results by
``xstilts forecast --evaluate`` (:mod:`xstilts.forecast.evaluate`).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..config import RunConfig
from ..data import TokenIds, available, featurized, load_examples, task_file
from ..errors import ConfigError
from ..families import get_family
from ..families.base import pad
from ..tasks import TaskSpec, get
from . import SELECTORS

BASELINE = "none"


def token_lists(rows) -> list[list[int]]:
    """The token id lists of featurized rows: ``input_ids``, or each choice of a multiple-choice row.
    Everything else (labels, spans) is dropped: this is all a text-similarity selector receives."""
    out = []
    for r in rows:
        if "input_ids" in r:
            out.append(list(r["input_ids"]))
        else:
            out.extend(list(c) for c in r["choice_ids"])
    return out


@torch.no_grad()
def dataset_embedding(encoder, texts: list[list[int]], pad_id: int, batch_size: int = 32) -> np.ndarray:
    """Mean over texts of each text's mean-pooled last hidden state (float64, one vector)."""
    encoder.eval()
    total, n = None, 0
    order = np.argsort([len(t) for t in texts])
    for i in range(0, len(order), batch_size):
        chunk = [texts[j] for j in order[i:i + batch_size]]
        ids = pad(chunk, pad_id)
        mask = (torch.arange(ids.shape[1])[None] < torch.as_tensor([len(t) for t in chunk])[:, None]).long()
        h = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.double()
        pooled = (h * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
        total = pooled.sum(0) if total is None else total + pooled.sum(0)
        n += len(chunk)
    return (total / n).numpy()


@torch.no_grad()
def probe_data(encoder, spec: TaskSpec, rows, tok: TokenIds, batch_size: int = 32,
               max_pairs: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """(features, labels) a linear probe of ``spec``'s training rows sees (the family's ``probe_features``),
    at most ``max_pairs`` pairs (token-level families keep an evenly spaced subset)."""
    family = get_family(spec.family)
    encoder.eval()
    feats, labels = [], []
    for i in range(0, len(rows), batch_size):
        batch = family.collate(rows[i:i + batch_size], tok)
        h = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
        f, y = family.probe_features(h, batch)
        feats.append(f.double().numpy())
        labels.append(y.numpy())
    f, y = np.concatenate(feats), np.concatenate(labels)
    if len(y) > max_pairs:
        keep = np.linspace(0, len(y) - 1, max_pairs).round().astype(int)
        f, y = f[keep], y[keep]
    return f, y


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.clip(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)), -1.0, 1.0))  # rounding: 1 + 2e-16


def _rows(cfg: RunConfig, spec: TaskSpec, split: str, lang: str, tokenizer, limit: int, cache: Path,
          label_free: bool = False, label_spec: TaskSpec | None = None):
    """``spec``'s examples featurized through ``label_spec`` (default ``spec``); ``label_free``: token lists."""
    ex = load_examples(spec, split, lang, cfg.data_dir, limit=limit, skip_invalid=cfg.skip_invalid)
    tc = cfg.target.train
    rows = featurized(label_spec or spec, ex, tokenizer, max_length=tc.max_length, cache_dir=cache, stride=tc.doc_stride,
                      source_key=json.dumps(["forecast", spec.name, split, lang, limit,
                                             str(task_file(spec, split, lang, cfg.data_dir))]))
    return [dict(r) for r in rows] if not label_free else token_lists(rows)


def intermediate_encoder(cfg: RunConfig) -> Path | None:
    """The encoder folder of ``cfg``'s intermediate phase if it has been trained (None otherwise)."""
    from ..pipeline import plan

    c = cfg.model_copy(deep=True)
    c.target.tasks = []
    for p in plan(c).phases:
        if p.kind == "intermediate" and p.status == "done" and (Path(p.path) / "encoder").is_dir():
            return Path(p.path) / "encoder"
    return None


def _phase_config(cfg: RunConfig, candidate: str, given: dict[str, RunConfig] | None) -> RunConfig:
    if given and candidate in given:
        return given[candidate]
    c = cfg.model_copy(deep=True)
    c.intermediate.tasks = [candidate]
    return c


def short_finetune(cfg: RunConfig, target: str, fraction: float, seed: int = 0) -> RunConfig:
    """``cfg`` with a target phase of ``fraction`` of its epochs (or max_steps), evaluated on English dev once,
    at the end."""
    c = cfg.model_copy(deep=True)
    c.target.tasks, c.target.seeds = [target], [seed]
    t = c.target.train
    update = {"patience": None, "eval_every": 10**9}  # one dev evaluation: the loop's final one
    if t.max_steps:
        update["max_steps"] = max(1, round(t.max_steps * fraction))
    else:
        update["epochs"] = t.epochs * fraction
    c.target.train = t.model_copy(update=update)
    return c


def forecast(cfg: RunConfig, target: str, candidates: list[str], *, examples: int = 256,
             selectors: tuple[str, ...] = SELECTORS, phase_configs: dict[str, RunConfig] | None = None,
             short_fraction: float = 0.25, log=print) -> dict:
    """Score every candidate (plus ``none``) for ``target`` with each selector; see the module doc.

    ``phase_configs``: candidate -> the run config whose intermediate phase trains it (LogME and en-dev-short
    look its encoder up there); default: ``cfg`` with ``intermediate.tasks = [candidate]``.
    ``short_fraction``: en-dev-short's share of the target phase's epochs.

    Returns ``{"target", "model", "candidates", "examples", "selectors": name -> {"scores": candidate ->
    score | None, "seconds", "notes"}}``.
    """
    from ..model import load_encoder, load_tokenizer
    from ..pipeline import register_config_tasks

    unknown = [x for x in selectors if x not in SELECTORS]
    if unknown:
        raise ConfigError(f"forecast: unknown selector(s) {', '.join(unknown)}; known: {', '.join(SELECTORS)}")
    if not 0 < short_fraction <= 1:
        raise ConfigError(f"forecast: short_fraction must be in (0, 1], got {short_fraction}")
    register_config_tasks(cfg)
    t_spec = get(target)
    if not get_family(t_spec.family).TRAINS:
        raise ConfigError(f"forecast: target {target!r} is a {t_spec.family} task (scored on the encoder); "
                          "LogME needs a trained target's labels")
    specs = {c: get(c) for c in candidates}
    cache = Path(cfg.workdir) / "cache"
    tokenizer = load_tokenizer(cfg.model)
    tok = TokenIds.of(tokenizer)
    base = load_encoder(cfg.model)
    out = {"target": target, "model": cfg.model, "candidates": [BASELINE] + list(candidates), "examples": examples,
           "selectors": {}}

    t0 = time.perf_counter()
    # the English data the target phase trains on (its train_task's, if it names one), with the target's labels
    train_name = cfg.target.train_task or t_spec.train_task
    train_spec = get(train_name) if train_name else t_spec
    target_rows = _rows(cfg, train_spec, cfg.target.train_split, train_spec.train_lang, tokenizer, examples, cache,
                        label_spec=t_spec)
    cand_texts = {c: _rows(cfg, s, "train", s.train_lang, tokenizer, examples, cache, label_free=True)
                  for c, s in specs.items()}
    prep = time.perf_counter() - t0

    if "embedding-en" in selectors or "embedding-xx" in selectors:
        t0 = time.perf_counter()
        emb = {c: dataset_embedding(base, texts, tok.pad_id) for c, texts in cand_texts.items()}
        shared = time.perf_counter() - t0 + prep

        def similarity(name: str, reference_texts, notes: str) -> None:
            t0 = time.perf_counter()
            ref = dataset_embedding(base, reference_texts(), tok.pad_id)
            out["selectors"][name] = {"scores": {BASELINE: None, **{c: cosine(e, ref) for c, e in emb.items()}},
                                      "seconds": shared + time.perf_counter() - t0, "notes": notes}

        if "embedding-en" in selectors:
            similarity("embedding-en", lambda: token_lists(target_rows),
                       f"cosine of mean-pooled {cfg.model} embeddings: candidate vs {target} English train "
                       f"({examples} examples each)")
        if "embedding-xx" in selectors:
            split = cfg.eval.split or t_spec.eval_split
            langs = [x for x in (cfg.eval.languages or t_spec.languages)
                     if x != "en" and available(t_spec, split, x, cfg.data_dir)]
            per = max(1, examples // max(1, len(langs)))
            if not langs:
                raise ConfigError(f"forecast: {target} has no {split} file in a language other than English under "
                                  f"{cfg.data_dir}; drop embedding-xx from --selectors")
            similarity("embedding-xx", lambda: [t for x in langs for t in _rows(cfg, t_spec, split, x, tokenizer, per,
                                                                                 cache, label_free=True)],
                       f"vs unlabeled {target} {split} text, {per} examples in each of {len(langs)} languages")

    if "logme" in selectors:
        from .logme import logme

        t0 = time.perf_counter()
        scores, notes = {}, []
        for c in [BASELINE] + list(candidates):
            enc_dir = None if c == BASELINE else intermediate_encoder(_phase_config(cfg, c, phase_configs))
            if c != BASELINE and enc_dir is None:
                scores[c] = None
                notes.append(f"{c} needs training first (no intermediate phase under {cfg.workdir})")
                continue
            enc = base if c == BASELINE else load_encoder(str(enc_dir))
            f, y = probe_data(enc, t_spec, target_rows, tok)
            scores[c] = logme(f, y)
        out["selectors"]["logme"] = {"scores": scores, "seconds": time.perf_counter() - t0 + prep,
                                     "notes": "; ".join(notes) or f"LogME of {target} English train labels"}

    if "en-dev-short" in selectors:
        from ..pipeline import Pipeline

        t0 = time.perf_counter()
        scores, notes = {}, []
        for c in [BASELINE] + list(candidates):
            run = short_finetune(cfg if c == BASELINE else _phase_config(cfg, c, phase_configs), target, short_fraction)
            if c == BASELINE:
                run.intermediate.tasks = []
            elif intermediate_encoder(run) is None:
                scores[c] = None
                notes.append(f"{c} needs training first (no intermediate phase under {cfg.workdir})")
                continue
            p = Pipeline(run, log=lambda m: None)
            rec = p.target_phase(target, run.target.seeds[0], p.upstream(), keep=False)
            scores[c] = rec.summary.get("best_dev")
            if scores[c] is None:
                raise ConfigError(f"forecast en-dev-short: {target} has no English dev set to score on")
        t = run.target.train
        length = f"{t.max_steps} steps" if t.max_steps else f"{t.epochs:g} epochs"
        out["selectors"]["en-dev-short"] = {
            "scores": scores, "seconds": time.perf_counter() - t0,
            "notes": "; ".join(notes) or f"{target} English dev after a {length} fine-tune (seed 0)"}

    if "largest-first" in selectors:
        t0 = time.perf_counter()
        sizes = {BASELINE: 0}
        for c, s in specs.items():
            sizes[c] = len(load_examples(s, "train", s.train_lang, cfg.data_dir, skip_invalid=cfg.skip_invalid))
        out["selectors"]["largest-first"] = {"scores": {k: float(v) for k, v in sizes.items()},
                                             "seconds": time.perf_counter() - t0,
                                             "notes": "English training examples"}
    return out


def format_forecast(result: dict) -> str:
    lines = [f"forecast for {result['target']} on {result['model']} ({result['examples']} examples per set)"]
    for name, sel in result["selectors"].items():
        scores = sel["scores"]
        ranked = sorted([c for c in scores if scores[c] is not None], key=lambda c: -scores[c])
        unscored = [c for c in scores if scores[c] is None]
        lines.append(f"  {name} ({sel['seconds']:.1f} s): " + ", ".join(f"{c} {scores[c]:.4g}" for c in ranked)
                     + (f"; not scored: {', '.join(unscored)}" if unscored else ""))
        if sel.get("notes"):
            lines.append(f"      {sel['notes']}")
    return "\n".join(lines)
