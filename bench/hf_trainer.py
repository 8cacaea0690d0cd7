"""The comparison side: plain transformers ``Trainer`` fine-tuning, as the example scripts do it.

Two configurations (``--padding``):

* ``max_length`` -- what ``run_xnli.py`` / ``run_qa.py`` do by default
  (``pad_to_max_length=True``): every input padded to ``--max-length``,
  ``default_data_collator``, random sampling.
* ``dynamic`` -- the Trainer's best CPU configuration: no padding at
  featurization, ``DataCollatorWithPadding``, ``train_sampling_strategy=
  "group_by_length"`` (transformers 5's name for ``group_by_length=True``),
  fp32 like xstilts on a CPU without native bf16, the Trainer's default fused
  AdamW.

Featurization follows the example scripts (``tokenizer(premise, hypothesis,
truncation=True)``; run_qa's ``prepare_train_features`` /
``prepare_validation_features`` and n-best post-processing), reimplemented here
compactly; files are read with xstilts' readers so both sides see the same
examples. Scores use ``xstilts.metrics`` (accuracy, SQuAD v1 F1).

Run alone::

    python bench/hf_trainer.py --model bench/.work/models/tiny-v16000 --task pair --padding dynamic

or through ``bench/run.py``, which runs it beside xstilts with the same settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PeakSampler, matmul_peak, rss_mb, set_threads, tydiqa, xnli  # noqa: E402

LABELS = ("entailment", "neutral", "contradiction")  # xstilts.io.NLI_LABELS order


def _pair_features(tokenizer, examples, max_length, padding):
    enc = tokenizer([e["text_a"] for e in examples], [e["text_b"] for e in examples],
                    padding="max_length" if padding == "max_length" else False,
                    max_length=max_length, truncation=True)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "labels": [LABELS.index(e["label"]) for e in examples]}


def _qa_train_features(tokenizer, examples, max_length, stride, padding):
    """run_qa.py ``prepare_train_features`` (pad_on_right, answer outside the window -> CLS)."""
    enc = tokenizer([e["question"].lstrip() for e in examples], [e["context"] for e in examples],
                    truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding="max_length" if padding == "max_length" else False)
    starts, ends = [], []
    for i, offsets in enumerate(enc["offset_mapping"]):
        ids = enc["input_ids"][i]
        cls = ids.index(tokenizer.cls_token_id)
        seq = enc.sequence_ids(i)
        answers = examples[enc["overflow_to_sample_mapping"][i]]["answers"]
        a0 = answers["answer_start"][0]
        a1 = a0 + len(answers["text"][0])
        ts = 0
        while seq[ts] != 1:
            ts += 1
        te = len(ids) - 1
        while seq[te] != 1:
            te -= 1
        if not (offsets[ts][0] <= a0 and offsets[te][1] >= a1):
            starts.append(cls)
            ends.append(cls)
        else:
            while ts < len(offsets) and offsets[ts][0] <= a0:
                ts += 1
            starts.append(ts - 1)
            while offsets[te][1] >= a1:
                te -= 1
            ends.append(te + 1)
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"],
            "start_positions": starts, "end_positions": ends}


def _qa_eval_features(tokenizer, examples, max_length, stride, padding):
    enc = tokenizer([e["question"].lstrip() for e in examples], [e["context"] for e in examples],
                    truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True,
                    padding="max_length" if padding == "max_length" else False)
    offsets = [[o if s == 1 else None for o, s in zip(enc["offset_mapping"][i], enc.sequence_ids(i))]
               for i in range(len(enc["input_ids"]))]
    return ({"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]},
            offsets, list(enc["overflow_to_sample_mapping"]))


def _qa_postprocess(examples, start_logits, end_logits, offsets, sample_map, n_best=20, max_answer=30):
    """run_qa's ``postprocess_qa_predictions`` (SQuAD v1: best non-null span per example)."""
    import numpy as np

    best = [(-np.inf, "") for _ in examples]
    for f, i in enumerate(sample_map):
        off = offsets[f]
        s_log, e_log = start_logits[f][: len(off)], end_logits[f][: len(off)]
        for s in np.argsort(s_log)[-1 : -n_best - 1 : -1]:
            for e in np.argsort(e_log)[-1 : -n_best - 1 : -1]:
                if off[s] is None or off[e] is None or e < s or e - s + 1 > max_answer:
                    continue
                score = s_log[s] + e_log[e]
                if score > best[i][0]:
                    best[i] = (score, examples[i]["context"][off[s][0] : off[e][1]])
    return [t for _, t in best]


def run(args) -> dict:
    set_threads(args.threads)
    import datasets
    import numpy as np
    import torch
    from transformers import (AutoModelForQuestionAnswering, AutoModelForSequenceClassification, AutoTokenizer,
                              DataCollatorWithPadding, Trainer, TrainingArguments, default_data_collator)
    from transformers.utils import logging as hf_logging

    from xstilts.metrics import accuracy, squad_v1

    hf_logging.set_verbosity_error()
    datasets.disable_progress_bars()
    rss0 = rss_mb()
    tok = AutoTokenizer.from_pretrained(args.model)
    t0 = time.perf_counter()
    if args.task == "pair":
        train_ex, dev_ex = xnli("test", args.train_limit), xnli("dev", args.dev_limit)
        train_cols = _pair_features(tok, train_ex, args.max_length, args.padding)
        dev_cols = _pair_features(tok, dev_ex, args.max_length, args.padding)
    else:
        train_ex, dev_ex = tydiqa("train", args.train_limit), tydiqa("dev", args.dev_limit)
        train_cols = _qa_train_features(tok, train_ex, args.max_length, args.doc_stride, args.padding)
        dev_cols, dev_offsets, dev_map = _qa_eval_features(tok, dev_ex, args.max_length, args.doc_stride, args.padding)
    train_ds = datasets.Dataset.from_dict(train_cols)
    dev_ds = datasets.Dataset.from_dict(dev_cols)
    featurize_s = time.perf_counter() - t0

    torch.manual_seed(args.seed)
    kw = {"attn_implementation": "sdpa"}
    if args.task == "pair":
        model = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=len(LABELS), **kw)
    else:
        model = AutoModelForQuestionAnswering.from_pretrained(args.model, **kw)
    rss_model = rss_mb()

    # Count what the model actually runs on (real tokens, padded size, lengths for attention FLOPs):
    # a forward pre-hook, since the Trainer's dataloader may collate a batch it does not train on.
    dynamic = args.padding == "dynamic"
    collator = DataCollatorWithPadding(tok) if dynamic else default_data_collator
    meter = {"examples": 0, "tokens": 0, "padded_tokens": 0, "lengths": []}

    def count(module, a, kw):
        mask = kw.get("attention_mask")
        if mask is None:
            return
        lengths = mask.sum(1)
        meter["examples"] += len(lengths)
        meter["tokens"] += int(lengths.sum())
        meter["padded_tokens"] += mask.numel()
        meter["lengths"] += lengths.tolist()

    model.register_forward_pre_hook(count, with_kwargs=True)
    out = Path(tempfile.mkdtemp(prefix="hf-trainer-", dir=args.work))
    targs = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=args.batch_size, per_device_eval_batch_size=args.eval_batch_size,
        learning_rate=args.lr, num_train_epochs=args.epochs, max_steps=args.max_steps or -1,
        warmup_steps=0.1, weight_decay=0.01, max_grad_norm=1.0, lr_scheduler_type="linear",
        train_sampling_strategy="group_by_length" if dynamic else "random",
        save_strategy="no", eval_strategy="no", logging_strategy="no", report_to=[], disable_tqdm=True,
        use_cpu=True, bf16=False, fp16=False, seed=args.seed, data_seed=args.seed, dataloader_num_workers=0,
    )
    if dynamic:
        train_ds = train_ds.add_column("length", [len(x) for x in train_cols["input_ids"]])  # precomputed for the sampler
    trainer = Trainer(model=model, args=targs, train_dataset=train_ds, data_collator=collator)
    probe = matmul_peak(2048, seconds=1.0)["gflops_median"] if args.probe else None
    with PeakSampler() as mem:
        t0 = time.perf_counter()
        metrics = trainer.train().metrics
        wall = time.perf_counter() - t0
    train_s = metrics["train_runtime"]
    trained = dict(meter)

    # Evaluation: trainer.predict over the dev features (the example scripts' evaluate/predict path).
    meter.update(examples=0, tokens=0, padded_tokens=0, lengths=[])
    t0 = time.perf_counter()
    pred = trainer.predict(dev_ds)
    eval_s = time.perf_counter() - t0
    if args.task == "pair":
        preds = [LABELS[i] for i in np.asarray(pred.predictions).argmax(-1)]
        score = accuracy(preds, [e["label"] for e in dev_ex])
        n_eval = len(dev_ex)
    else:
        start, end = pred.predictions
        texts = _qa_postprocess(dev_ex, start, end, dev_offsets, dev_map)
        score = squad_v1({e["id"]: t.strip() for e, t in zip(dev_ex, texts)},
                         {e["id"]: list(e["answers"]["text"]) for e in dev_ex})["f1"]
        n_eval = len(dev_ex)
    return {
        "side": f"trainer-{args.padding}", "task": args.task, "train_rows": len(train_ds), "dev_rows": len(dev_ds),
        "featurize_s": featurize_s, "train_s": train_s, "train_wall_s": wall,
        "steps": metrics.get("train_steps", trainer.state.global_step), "examples": trained["examples"],
        "tokens": trained["tokens"], "padded_tokens": trained["padded_tokens"], "lengths": trained["lengths"],
        "eval_s": eval_s, "eval_examples": n_eval, "eval_rows": len(dev_ds), "eval_lengths": meter["lengths"],
        "score": score, "rss_model_mb": rss_model - rss0, "probe_gflops": probe, "peak_train_mb": mem.peak,
        "optimizer": type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, "optimizer") else trainer.optimizer).__name__
        + (" (fused)" if getattr(trainer.optimizer, "defaults", {}).get("fused") else ""),
    }


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--task", choices=("pair", "qa"), default="pair")
    p.add_argument("--padding", choices=("max_length", "dynamic"), default="dynamic")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--doc-stride", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--dev-limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=tempfile.gettempdir())
    p.add_argument("--json-out", default="", help="write the full result (with per-example lengths) here")
    p.add_argument("--probe", action="store_true", help="time a short 2048^3 matmul burst first (machine load)")
    return p


if __name__ == "__main__":
    a = parser().parse_args()
    result = run(a)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(result))
    print(json.dumps({k: v for k, v in result.items() if "lengths" not in k}, indent=1))
