"""Inference latency of the XLM-R base and large shapes (and me5-small) on this machine's CPU.

    python docs/findings/latency_shapes.py            # writes docs/findings/latency/shapes.json

Latency depends on the architecture, not the weights (no data-dependent control flow), so the XLM-R base
(12 x 768, FFN 3072) and large (24 x 1024, FFN 4096) shapes are built with random weights and the full
250,002-row vocabulary; me5-small (12 x 384) has its real weights. Each model carries the XCOPA head the
latency study's target uses (multiple choice: two premise-choice sequences per example) and runs
``xstilts.studies.latency.measure_latency`` -- the study's own measurement -- on XCOPA test examples (Estonian,
max length 128): each of 200 examples at batch 1 (p50 / p95 per example) and 8 batches of 32 (examples/s),
fp32, the process's 2 threads. Three repeats, the models interleaved within each repeat; the table gives
the mean over repeats with a 95 % t-interval, and the large/base ratio per repeat with its interval.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
OUT = Path(__file__).resolve().parent / "latency" / "shapes.json"
SHAPES = {"xlmr-base-250k": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072),
          "xlmr-large-250k": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096)}


def build(name: str, tokenizer):
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    from xstilts.me5 import resolve
    from xstilts.model import MultiTaskModel, load_encoder
    from xstilts.tasks import get

    if name == "me5-small":
        enc = load_encoder(resolve("me5-small"))
    else:
        torch.manual_seed(0)
        cfg = XLMRobertaConfig(vocab_size=250_002, max_position_embeddings=514, type_vocab_size=1,
                               pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                               eos_token_id=tokenizer.eos_token_id, **SHAPES[name])
        enc = XLMRobertaModel(cfg, add_pooling_layer=False)
    model = MultiTaskModel(enc)
    model.add_task(get("xcopa"))
    params = sum(p.numel() for p in enc.parameters())
    return model.eval(), params


def t95(x) -> dict:
    from xstilts.stats import t_interval

    return t_interval(list(map(float, x)))


def main(repeats: int = 3, examples: int = 200, batch_size: int = 32, batches: int = 8) -> dict:
    import torch

    from xstilts.data import load_examples
    from xstilts.families import get_family
    from xstilts.me5 import resolve
    from xstilts.model import load_tokenizer
    from xstilts.studies.latency import measure_latency
    from xstilts.tasks import get

    tokenizer = load_tokenizer(resolve("me5-small"))  # XLM-R's SentencePiece vocabulary
    spec = get("xcopa")
    ex = load_examples(spec, "test", "et", DATA, limit=max(examples, batch_size))
    cols = get_family(spec.family).featurize(ex, tokenizer, spec, 128, None)
    rows = [dict(zip(cols, v)) for v in zip(*cols.values())]
    models = {n: build(n, tokenizer) for n in ["me5-small", *SHAPES]}
    runs = {n: [] for n in models}
    t0 = time.perf_counter()
    for rep in range(repeats):
        for name, (model, _) in models.items():
            r = measure_latency(model, "xcopa", spec.family, rows, tokenizer, examples=examples,
                                batch_size=batch_size, batches=batches, warmup=10)
            runs[name].append(r)
            print(f"repeat {rep}: {name}: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                  f"{r['throughput']:.1f} ex/s at batch {batch_size}", flush=True)
    out = {"setting": {"task": "xcopa test, et", "max_length": 128, "examples_batch1": examples,
                       "batch_size": batch_size, "batches": batches, "repeats": repeats, "precision": "fp32",
                       "threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
                       "torch": torch.__version__, "wall_s": time.perf_counter() - t0,
                       "tokens_per_example": float(np.mean([sum(len(c) for c in r["choice_ids"]) for r in rows[:examples]]))},
           "models": {}}
    for name, (model, params) in models.items():
        rs = runs[name]
        out["models"][name] = {"params": params, "weights": "real" if name == "me5-small" else "random",
                               "p50_ms": t95([r["p50_ms"] for r in rs]), "p95_ms": t95([r["p95_ms"] for r in rs]),
                               "throughput": t95([r["throughput"] for r in rs]), "runs": rs}
    base, large = runs["xlmr-base-250k"], runs["xlmr-large-250k"]
    out["large_over_base"] = {"p50": t95([lg["p50_ms"] / b["p50_ms"] for lg, b in zip(large, base)]),
                              "throughput": t95([lg["throughput"] / b["throughput"] for lg, b in zip(large, base)])}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main(*map(int, sys.argv[1:]))
