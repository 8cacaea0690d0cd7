"""Memory of a 1M-example intermediate set: featurize it once (Arrow cache), then train from the cache.

Two stages, each in its own process so their peaks do not mix:

* ``--stage featurize``: generate ``--n`` synthetic sentence pairs (a list of dicts,
  as ``load_examples`` returns), run ``xstilts.data.featurized`` on them; report time,
  the examples' own memory and the featurization peak above it.
* ``--stage train``: load the model, then the cache (memory-mapped), train ``--steps``
  steps; report peak RSS / anonymous RSS above the model's footprint (weights +
  optimizer state + one step's activations and gradients, measured on the same
  model in the same process before the data is opened).

    python bench/memory_1m.py --stage featurize --n 1000000
    python bench/memory_1m.py --stage train --n 1000000
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, PeakSampler, anon_mb, peak_rss_mb, rss_mb, set_threads, synthetic_pairs  # noqa: E402


def _cache(args) -> Path:
    return Path(args.work) / f"cache-mem-{args.n}"


def _source(args) -> str:
    return json.dumps(["bench-synthetic-pairs", args.n, 0])


def featurize_stage(args) -> dict:
    set_threads(args.threads)
    import xstilts
    from xstilts import data
    from xstilts.model import load_tokenizer
    from xstilts.tasks import get

    import patches

    xstilts._quiet_libraries()
    applied = patches.apply(args.patch)
    tok = load_tokenizer(args.model)
    cache = _cache(args)
    shutil.rmtree(cache, ignore_errors=True)
    rss0, anon0 = rss_mb(), anon_mb()
    t0 = time.perf_counter()
    examples = list(synthetic_pairs(args.n))
    gen_s = time.perf_counter() - t0
    rss1, anon1 = rss_mb(), anon_mb()
    with PeakSampler() as mem:
        t0 = time.perf_counter()
        rows = data.featurized(get("xnli"), examples, tok, max_length=args.max_length, cache_dir=cache,
                               source_key=_source(args))
        feat_s = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in cache.rglob("*") if f.is_file())
    return {"stage": "featurize", "patch": "+".join(applied) or "current", "n": args.n, "rows": len(rows),
            "generate_s": gen_s, "featurize_s": feat_s, "examples_mb": rss1 - rss0,
            "featurize_peak_above_examples_mb": mem.peak - rss1,
            "featurize_peak_anon_above_examples_mb": mem.peak_anon - anon1,
            "process_peak_mb": peak_rss_mb(), "cache_mb": size / 2**20}


def train_stage(args) -> dict:
    set_threads(args.threads)
    import torch

    import xstilts
    from xstilts import data
    from xstilts.config import TrainConfig
    from xstilts.model import MultiTaskModel, load_tokenizer
    from xstilts.tasks import get
    from xstilts.train import TrainTask, train

    import patches

    xstilts._quiet_libraries()
    applied = patches.apply(args.patch)
    spec = get("xnli")
    tok = load_tokenizer(args.model)
    rss0, anon0 = rss_mb(), anon_mb()
    model = MultiTaskModel(xstilts.model.load_encoder(args.model))  # looked up after patches.apply
    model.add_task(spec)
    # The model's own footprint: weights, AdamW state, gradients and one step's activations at
    # the largest shape the run can see (batch x max_length), measured without touching the data.
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    ids = torch.full((args.batch_size, args.max_length), 5)
    loss, _ = model(spec.name, {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                                "label": torch.zeros(args.batch_size, dtype=torch.long)})
    loss.backward()
    opt.step()
    footprint_peak = max(rss_mb(), 0)
    del opt
    model.zero_grad(set_to_none=True)
    rss_model, anon_model = footprint_peak, anon_mb()
    cache = _cache(args)
    out = Path(args.work) / "mem-train-out"
    shutil.rmtree(out, ignore_errors=True)
    with PeakSampler() as mem:
        rows = data.featurized(spec, [], tok, max_length=args.max_length, cache_dir=cache, source_key=_source(args))
        assert len(rows) == args.n, f"no cache of {args.n} rows at {cache}: run --stage featurize first"
        rss_loaded = rss_mb()
        cfg = TrainConfig(lr=1e-4, batch_size=args.batch_size, max_steps=args.steps, eval_every=10**9,
                          max_length=args.max_length)
        t0 = time.perf_counter()
        result = train(model, [TrainTask(spec, rows, None)], cfg, out, tokenizer=tok, seed=0, log=lambda m: None)
        wall = time.perf_counter() - t0
    shutil.rmtree(out, ignore_errors=True)
    return {"stage": "train", "patch": "+".join(applied) or "current", "n": len(rows), "steps": result.steps,
            "model_footprint_mb": rss_model - rss0, "rss_after_open_mb": rss_loaded - rss_model,
            "train_peak_above_model_mb": mem.peak - rss_model,
            "train_peak_anon_above_model_mb": mem.peak_anon - anon_model,
            "examples_per_s": result.timings["examples_per_s"], "wall_s": wall, "process_peak_mb": peak_rss_mb()}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=("featurize", "train"), required=True)
    p.add_argument("--model", default=str(BENCH / ".work" / "models" / "tiny-v16000"))
    p.add_argument("--n", type=int, default=1_000_000)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--patch", default="")
    p.add_argument("--work", default=str(BENCH / ".work"))
    p.add_argument("--json-out", default="")
    return p


if __name__ == "__main__":
    a = parser().parse_args()
    result = featurize_stage(a) if a.stage == "featurize" else train_stage(a)
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(result))
    print(json.dumps(result, indent=1))
