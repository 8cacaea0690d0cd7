"""The xstilts side: featurize through the family (Arrow cache), ``xstilts.train.train``, ``xstilts.evaluate.evaluate``.

Run alone::

    python bench/side_xstilts.py --model bench/.work/models/tiny-v16000 --task pair [--patch foreach_adamw]

``--patch`` applies alternatives from ``bench/patches.py`` (monkeypatches of the
core, measured before they are proposed as diffs).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import PeakSampler, matmul_peak, rss_mb, set_threads, tydiqa, xnli  # noqa: E402


def run(args) -> dict:
    set_threads(args.threads)
    import torch
    from accelerate.utils import set_seed

    import xstilts
    from xstilts.config import TrainConfig
    from xstilts.data import featurized
    from xstilts.evaluate import EvalSet, evaluate
    from xstilts.families import get_family
    from xstilts.model import MultiTaskModel, load_tokenizer
    from xstilts.tasks import get
    from xstilts.train import TrainTask, resolve_precision, train

    import patches

    xstilts._quiet_libraries()
    applied = patches.apply(args.patch)
    rss0 = rss_mb()
    spec = get("xnli" if args.task == "pair" else "tydiqa")
    tok = load_tokenizer(args.model)
    if args.task == "pair":
        train_ex, dev_ex = xnli("test", args.train_limit), xnli("dev", args.dev_limit)
    else:
        train_ex, dev_ex = tydiqa("train", args.train_limit), tydiqa("dev", args.dev_limit)
    cache = Path(args.work) / "cache"
    t0 = time.perf_counter()
    rows = featurized(spec, train_ex, tok, max_length=args.max_length, cache_dir=cache, stride=args.doc_stride,
                      source_key=json.dumps(["bench", args.task, "train", len(train_ex)]))
    dev_rows = featurized(spec, dev_ex, tok, max_length=args.max_length, cache_dir=cache, stride=args.doc_stride,
                          source_key=json.dumps(["bench", args.task, "dev", len(dev_ex)]))
    featurize_s = time.perf_counter() - t0

    set_seed(args.seed)
    model = MultiTaskModel(xstilts.model.load_encoder(args.model))  # looked up after patches.apply
    model.add_task(spec)
    rss_model = rss_mb()

    # Count what the loop feeds the model: real tokens, padded size, lengths (for attention FLOPs).
    family = get_family(spec.family)
    inner = family.collate
    meter = {"examples": 0, "tokens": 0, "padded_tokens": 0, "lengths": []}

    def collate(batch_rows, tok_ids):
        batch = inner(batch_rows, tok_ids)
        lengths = batch["attention_mask"].sum(1)
        meter["examples"] += len(lengths)
        meter["tokens"] += int(lengths.sum())
        meter["padded_tokens"] += batch["attention_mask"].numel()
        meter["lengths"] += lengths.tolist()
        return batch

    family.collate = collate
    cfg = TrainConfig(lr=args.lr, batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps or None,
                      warmup_ratio=0.1, weight_decay=0.01, max_grad_norm=1.0, eval_every=10**9,
                      max_length=args.max_length, doc_stride=args.doc_stride, precision=args.precision)
    out = Path(tempfile.mkdtemp(prefix="xstilts-", dir=args.work))
    probe = matmul_peak(2048, seconds=1.0)["gflops_median"] if args.probe else None
    try:
        with PeakSampler() as mem:
            t0 = time.perf_counter()
            if args.profile:
                result = _profiled(args.profile, lambda: train(model, [TrainTask(spec, rows, None)], cfg, out,
                                                               tokenizer=tok, seed=args.seed, log=lambda m: None))
            else:
                result = train(model, [TrainTask(spec, rows, None)], cfg, out, tokenizer=tok, seed=args.seed,
                               log=lambda m: None)
            wall = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    trained = dict(meter)
    meter.update(examples=0, tokens=0, padded_tokens=0, lengths=[])
    t0 = time.perf_counter()
    scores, _ = evaluate(model, EvalSet(spec, "en", dev_ex, dev_rows), tok, batch_size=args.eval_batch_size)
    eval_s = time.perf_counter() - t0
    family.collate = inner
    return {
        "side": "xstilts" + (f"+{'+'.join(applied)}" if applied else ""), "task": args.task,
        "train_rows": len(rows), "dev_rows": len(dev_rows), "featurize_s": featurize_s,
        "train_s": result.timings["train_s"], "train_wall_s": wall, "steps": result.steps,
        "examples": trained["examples"], "tokens": trained["tokens"], "padded_tokens": trained["padded_tokens"],
        "lengths": trained["lengths"], "eval_s": eval_s, "eval_examples": len(dev_ex), "eval_rows": len(dev_rows),
        "eval_lengths": meter["lengths"],
        "score": scores["accuracy"] if args.task == "pair" else scores["f1"],
        "rss_model_mb": rss_model - rss0, "probe_gflops": probe, "peak_train_mb": mem.peak,
        "precision": resolve_precision(args.precision), "loss_last": result.history[-1]["loss"],
    }


def _profiled(kind: str, fn):
    """``cprofile:PATH`` (pstats file + top functions printed) or ``torch:PATH`` (torch.profiler table)."""
    what, _, path = kind.partition(":")
    if what == "cprofile":
        import cProfile
        import pstats

        prof = cProfile.Profile()
        result = prof.runcall(fn)
        prof.dump_stats(path)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        return result
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        result = fn()
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30)
    # Which copies and elementwise ops: the same, grouped by op and input shapes (with_stack=True fails to
    # decode its events on torch 2.13).
    shapes = prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40)
    Path(path).write_text(table + "\n\nBy input shapes:\n" + shapes)
    print(table, file=sys.stderr)
    return result


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--task", choices=("pair", "qa"), default="pair")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--doc-stride", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--lr", type=float, default=2e-5)
    p.add_argument("--precision", default="auto")
    p.add_argument("--train-limit", type=int, default=None)
    p.add_argument("--dev-limit", type=int, default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--patch", default="", help="comma-separated prototypes from bench/patches.py")
    p.add_argument("--profile", default="", help="cprofile:PATH or torch:PATH")
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
