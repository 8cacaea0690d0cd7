"""Training-step micro-benchmark: eager vs ``torch.compile`` (dynamic shapes) of the encoder, with and
without bucketing padded lengths to a multiple of 8/16.

    python bench/compile_steps.py --model bench/.work/models/tiny-v16000 --batch 32 --steps 30
    python bench/compile_steps.py --model bench/.work/models/base100m-v16000 --batch 8 --steps 8

A step is what ``xstilts.train`` does per batch: forward of ``MultiTaskModel`` (classification head),
backward, gradient clipping, fused AdamW. Each step draws new lengths (a batch of similar lengths, as
length-grouped sampling gives) and runs every variant on them in turn (rotating the order), so load
from other processes on a shared machine hits all variants alike; the speed-up is the median of the
per-step ratios. The compiled model compiles (cold inductor cache) in its first steps, timed apart.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_average, set_threads  # noqa: E402

VARIANTS = "eager:0,eager:8,eager:16,compile:0,compile:8,compile:16"


def run(args) -> list[dict]:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads libgomp: see bench/run.py
    set_threads(args.threads)
    import numpy as np
    import torch

    import xstilts
    from xstilts.model import MultiTaskModel, load_encoder
    from xstilts.tasks import get
    from xstilts.train import fast_dropout

    xstilts._quiet_libraries()
    torch.manual_seed(0)
    spec = get("xnli")
    eager = MultiTaskModel(fast_dropout.use(load_encoder(args.model), True))  # as the training loop does
    eager.add_task(spec)
    models = {"eager": eager}
    variants = [(m, int(k)) for m, k in (v.split(":") for v in args.variants.split(","))]
    if any(m == "compile" for m, _ in variants):
        models["compile"] = copy.deepcopy(eager)
        models["compile"].encoder.forward = torch.compile(models["compile"].encoder.forward, dynamic=True)
    opts = {m: torch.optim.AdamW(x.parameters(), lr=1e-5, fused=True) for m, x in models.items()}
    vocab = eager.encoder.config.vocab_size
    rng = np.random.default_rng(args.seed)

    def step(mode, lengths, multiple) -> float:
        width = int(lengths.max())
        width = -(-width // multiple) * multiple if multiple else width
        mask = (torch.arange(width)[None] < lengths[:, None]).long()
        ids = torch.randint(5, vocab, (len(lengths), width)).masked_fill(mask == 0, 1)
        batch = {"input_ids": ids, "attention_mask": mask, "label": torch.randint(0, 3, (len(lengths),))}
        model, opt = models[mode], opts[mode]
        model.train()
        t0 = time.perf_counter()
        loss, _ = model(spec.name, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return time.perf_counter() - t0

    times = {v: [] for v in variants}
    for i in range(args.warmup + args.steps):
        top = int(rng.integers(args.min_len, args.max_len + 1))
        lengths = torch.as_tensor(rng.integers(max(2, top - top // 8), top + 1, args.batch))
        for v in variants[i % len(variants):] + variants[: i % len(variants)]:
            times[v].append(step(v[0], lengths, v[1]))
    base = times[variants[0]][args.warmup:]
    out = []
    for v in variants:
        timed = times[v][args.warmup:]
        ratios = sorted(b / t for b, t in zip(base, timed))
        out.append({"mode": v[0], "multiple": v[1], "median_ms": 1000 * float(np.median(timed)),
                    "min_ms": 1000 * min(timed), "speedup": ratios[len(ratios) // 2],
                    "warmup_s": sum(times[v][: args.warmup])})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(Path(__file__).resolve().parent / ".work" / "models" / "tiny-v16000"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=30, help="timed steps per variant (after --warmup)")
    p.add_argument("--warmup", type=int, default=3, help="untimed first steps (compilation happens here)")
    p.add_argument("--min-len", type=int, default=16)
    p.add_argument("--max-len", type=int, default=128)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variants", default=VARIANTS, help="mode:multiple,... (the first is the reference)")
    a = p.parse_args()
    load = load_average()
    if "TORCHINDUCTOR_CACHE_DIR" in os.environ:  # a warm cache: compile time of a later run
        rows = run(a)
    else:
        with tempfile.TemporaryDirectory(prefix="inductor-") as cache:  # cold: the first run's compile time
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
            rows = run(a)
    base = rows[0]
    print(f"{Path(a.model).name}, batch {a.batch}, lengths {a.min_len}-{a.max_len}, {a.threads} threads, "
          f"{a.steps} timed steps; load average {load} -> {load_average()}\n")
    print(f"| mode | pad to multiple of | median ms/step | min ms/step | speed-up (median per-step ratio) | "
          f"first {a.warmup} steps s | break-even steps |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        saved = (base["median_ms"] - r["median_ms"]) / 1000
        extra = r["warmup_s"] - base["warmup_s"]
        even = f"{extra / saved:,.0f}" if saved > 0 and extra > 1 else ("never" if extra > 1 else "-")
        print(f"| {r['mode']} | {r['multiple'] or '-'} | {r['median_ms']:.1f} | {r['min_ms']:.1f} | "
              f"{r['speedup']:.2f}x | {r['warmup_s']:.1f} | {even} |")


if __name__ == "__main__":
    main()
