"""CPU benchmark: xstilts fine-tuning vs a transformers Trainer script doing the same fine-tuning, in one run.

How to run (from the repository root; not part of the test suite)::

    . .venv/bin/activate
    python bench/run.py                      # default: about 25 min on 2 cores
    python bench/run.py --quick              # a few minutes, smaller slices
    python bench/run.py --models tiny --tasks pair,qa
    python bench/run.py --models base100m --tasks pair --base-train-pair 512
    python bench/run.py --xstilts-variants current,compiled # also xstilts with a bundle of bench/patches.py
    python bench/run.py --models tiny --repeats 3            # best of 3 interleaved rounds per side
    python bench/run.py --models me5-small,xlmr-base-250k --repeats 2 --skip memory,mining,threads
                                             # the real 250,002-row vocabulary (about 1 h on 2 cores)

It prints a Markdown report and writes it to ``bench/results.md`` (raw numbers
in ``bench/.work/results.json``). Models, tokenizer and feature caches are
built once under ``bench/.work`` (first run: +2 min for the tokenizer).

What runs, each side in its own process with the same thread count:

* **sides**: ``xstilts`` (``bench/side_xstilts.py``: ``featurized`` Arrow cache,
  ``xstilts.train.train``, ``xstilts.evaluate.evaluate``); on request
  ``xstilts+<bundle>`` (the same with alternatives from ``bench/patches.py``,
  ``--xstilts-variants``); ``trainer-dynamic`` and ``trainer-max_length`` (``bench/hf_trainer.py``: the
  Trainer's best CPU configuration, and the example scripts' pad-to-max_length default).
  Same model, examples, max length (pairs 128, as run_xnli.py; span QA 384 with doc stride 128, as
  run_qa.py and XTREME), batch size (32),
  epochs / steps, learning rate, warmup 10 %, weight decay 0.01, clipping 1.0, fp32
  (``precision=auto`` resolves to fp32 on a CPU without native bf16).
* **tasks**: ``pair`` = XNLI English (train: a slice of ``xnli/test-en.tsv``, dev:
  ``dev-en.tsv``, accuracy); ``qa`` = TyDiQA-GoldP English (train slice, dev slice, SQuAD v1 F1).
* **models**: ``tiny`` (``xstilts.tiny.build_tiny_model``: 2 x 32) and ``base100m``
  (XLM-R base shape 12 x 768, FFN 3072, random weights, 16k Unigram vocabulary
  trained on the data folder's text), both with the same tokenizer; on request the real
  250,002-row vocabulary, where the word-embedding table dominates: ``me5-small`` (its real weights, so the
  dev score is above chance) and ``xlmr-base-250k`` (XLM-R base shape, random weights, me5-small's tokenizer).
  xstilts trains only the embedding rows the data uses (``xstilts.active_rows``); the xstilts variant
  ``dense_embeddings`` (``--xstilts-variants current,dense_embeddings``) measures its dense path beside it.
* **memory**: each side's peak resident memory while training (``peak train MB``; sampled every 50 ms) and
  xstilts' as a share of each other side's.
* **throughput**: training examples/s and real (non-pad) tokens/s over the
  training loop only (setup, evaluation and checkpoint writing excluded on
  both sides: xstilts' ``timings["train_s"]``, the Trainer's ``train_runtime``);
  evaluation examples/s over the dev set.
* **MFU**: model FLOPs of the real tokens (``common.train_flops``: 6 x
  non-embedding params x tokens + 12 x layers x hidden x length^2 per sequence)
  per second, over the fp32 ``torch.mm`` 2048^3 rate measured at the start of
  this run (best of 5 bursts).
* **mining**: ``xstilts.metrics.bucc_mine`` (k=4) on random 10k x 10k embeddings.
* **memory**: a 1M-example synthetic sentence-pair intermediate set through
  ``featurized`` (10k-example Arrow shards), then training from the
  memory-mapped cache (``bench/memory_1m.py``).

The machine may be shared: each side's process times a short matmul burst
just before it trains (column "mm probe") so that load from other processes is
visible. OpenMP workers are set to sleep while idle (``OMP_WAIT_POLICY=PASSIVE``,
``--omp-wait default`` to leave libgomp's spinning): with spinning workers and
another busy process on 2 cores, a step can take 10x longer (see the thread table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, REAL_VOCAB, build_assets, eval_flops, load_average, matmul_peak, model_shape, set_threads, train_flops  # noqa: E402

SIDES = ("xstilts", "trainer-dynamic", "trainer-max_length")


def settings(args) -> dict:
    """(model, task) -> the fine-tuning both sides run."""
    q = args.quick
    return {
        ("tiny", "pair"): dict(train_limit=2000 if q else None, dev_limit=1000 if q else None,
                               epochs=1 if q else 2, max_steps=0, lr=5e-4),
        ("tiny", "qa"): dict(train_limit=400 if q else 1500, dev_limit=100 if q else 440, epochs=1, max_steps=0, lr=5e-4),
        # One epoch over the same slice on every side: the same examples, so the same real tokens.
        ("base100m", "pair"): dict(train_limit=args.base_train_pair or (64 if q else 512),
                                   dev_limit=args.base_dev_pair or (32 if q else 128), epochs=1, max_steps=0, lr=5e-5),
        ("base100m", "qa"): dict(train_limit=args.base_train_qa or (8 if q else 64),
                                 dev_limit=args.base_dev_qa or (8 if q else 24), epochs=1, max_steps=0, lr=5e-5),
        # Real vocabulary. me5-small pairs: 2,048 examples (64 steps), enough for dev accuracy well above chance.
        ("me5-small", "pair"): dict(train_limit=256 if q else 2048, dev_limit=64 if q else 500, epochs=1, max_steps=0,
                                    lr=5e-5),
        ("me5-small", "qa"): dict(train_limit=32 if q else 256, dev_limit=16 if q else 100, epochs=1, max_steps=0,
                                  lr=5e-5),
        ("xlmr-base-250k", "pair"): dict(train_limit=64 if q else 512, dev_limit=32 if q else 128, epochs=1,
                                         max_steps=0, lr=5e-5),
        ("xlmr-base-250k", "qa"): dict(train_limit=8 if q else 64, dev_limit=8 if q else 24, epochs=1, max_steps=0,
                                       lr=5e-5),
    }


def plan_keys():
    return settings(argparse.Namespace(quick=False, base_train_pair=0, base_dev_pair=0, base_train_qa=0, base_dev_qa=0))


def lengths(task: str, args) -> tuple[int, int]:
    """(max length, doc stride): run_xnli.py's 128 for pairs, run_qa.py's 384 / 128 for span QA (XTREME's too)."""
    return (args.max_length, 64) if task == "pair" else (args.qa_max_length, args.qa_doc_stride)


def child_env(args) -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    env.pop("OMP_WAIT_POLICY", None)
    if args.omp_wait != "default":
        env["OMP_WAIT_POLICY"] = args.omp_wait.upper()
    env["TOKENIZERS_PARALLELISM"] = "true"
    env["PYTHONWARNINGS"] = "ignore"
    return env


def run_child(cmd: list[str], args, log) -> dict | None:
    out = Path(args.workdir) / "tmp" / f"result-{os.getpid()}-{time.monotonic_ns()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable] + cmd + ["--json-out", str(out)], env=child_env(args), capture_output=True,
                       text=True)
    if r.returncode != 0 or not out.exists():
        log(f"    FAILED ({r.returncode}): {' '.join(cmd)}\n" + "\n".join(r.stderr.splitlines()[-15:]))
        return None
    result = json.loads(out.read_text())
    out.unlink()
    result["process_s"] = time.perf_counter() - t0
    return result


def side_cmd(side: str, model_dir: Path, task: str, s: dict, args, patch: str = "", seed: int | None = None) -> list[str]:
    script = "side_xstilts.py" if side.startswith("xstilts") else "hf_trainer.py"
    max_length, stride = lengths(task, args)
    cmd = [str(BENCH / script), "--model", str(model_dir), "--task", task, "--max-length", str(max_length),
           "--doc-stride", str(stride), "--batch-size", str(args.batch_size), "--epochs", str(s["epochs"]),
           "--max-steps", str(s["max_steps"]), "--lr", str(s["lr"]), "--threads", str(args.threads),
           "--work", str(Path(args.workdir) / "tmp"), "--probe", "--seed", str(args.seed if seed is None else seed)]
    if s["train_limit"]:
        cmd += ["--train-limit", str(s["train_limit"])]
    if s["dev_limit"]:
        cmd += ["--dev-limit", str(s["dev_limit"])]
    if side.startswith("trainer-"):
        cmd += ["--padding", side.split("-", 1)[1]]
    if patch:
        cmd += ["--patch", patch]
    return cmd


# ---------------------------------------------------------------- report


def fmt(x, digits=1):
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    return f"{x:,.{digits}f}"


def derive(r: dict, shape: dict, peak: float) -> dict:
    r = dict(r)
    r["ex_s"] = r["examples"] / r["train_s"]
    r["tok_s"] = r["tokens"] / r["train_s"]
    r["pad_pct"] = 100 * (1 - r["tokens"] / r["padded_tokens"]) if r["padded_tokens"] else 0.0
    r["gflops"] = train_flops(shape, r["lengths"]) / r["train_s"] / 1e9
    r["mfu"] = 100 * r["gflops"] / peak
    r["eval_ex_s"] = r["eval_examples"] / r["eval_s"]
    r["eval_mfu"] = 100 * eval_flops(shape, r["eval_lengths"]) / r["eval_s"] / 1e9 / peak
    return r


def report(meta: dict, runs: list[dict], extra: dict) -> str:
    peak = meta["peak_used"]
    lines = [
        "# xstilts vs transformers Trainer: CPU benchmark",
        "",
        f"{meta['date']} -- {meta['cpu']}, {meta['threads']} thread(s), OMP_WAIT_POLICY={meta['omp_wait']}, "
        f"torch {meta['torch']}, transformers {meta['transformers']}, precision fp32 (no native CPU bf16). "
        f"Load average at start {meta['load_start']}, at end {meta.get('load_end', '?')}. "
        f"Total wall time {meta.get('wall_min', 0):.1f} min.",
        "",
        f"Matmul peak (fp32 torch.mm {meta['peak']['n']}^3, FLOPs = 2n^3): {peak:.1f} GFLOP/s = the best of the "
        f"start-up measurement (best {meta['peak']['gflops_best']:.1f}, median {meta['peak']['gflops_median']:.1f} "
        "of 5 bursts) and the per-side probes. MFU = model FLOPs of real tokens "
        "(6 x non-embedding params x tokens + 12 x layers x hidden x length^2 per sequence; eval: a third) "
        "/ time / that peak.",
        "",
        "## Training and evaluation",
        "",
        "| model | task | max len | side | train rows | steps | train ex/s | real tok/s | pad % | xstilts speed-up vs side | "
        "peak train MB | xstilts memory vs side | MFU % | mm probe GF/s | eval ex/s | eval MFU % | dev score |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    goals = []
    for (model, task), group in _groups(runs):
        ref = next((r for r in group if r["side"] == "xstilts"), None)
        for r in group:
            speed = f"{ref['ex_s'] / r['ex_s']:.2f}x" if ref and r is not ref and not r["side"].startswith("xstilts") else "-"
            if r["side"].startswith("xstilts+") and ref:
                speed = f"{r['ex_s'] / ref['ex_s']:.2f}x vs xstilts"
            score = 100 * r["score"]
            seeds = r.get("rounds_score") or []
            seeds_txt = f" (seeds: {', '.join(f'{100 * x:.1f}' for x in seeds)})" if len(seeds) > 1 else ""
            mem = f"{ref['peak_train_mb'] / r['peak_train_mb']:.0%}" if ref and r is not ref else "-"
            lines.append(
                f"| {model} | {task} | {r.get('max_length', '-')} | {r['side']} | {r['train_rows']:,} | {r['steps']} | {fmt(r['ex_s'])}{_rounds(r)} | "
                f"{fmt(r['tok_s'], 0)} | {fmt(r['pad_pct'])} | {speed} | {fmt(r['peak_train_mb'], 0)} | {mem} | "
                f"{fmt(r['mfu'])} | {fmt(r.get('probe_gflops'))} | "
                f"{fmt(r['eval_ex_s'])} | {fmt(r['eval_mfu'])} | {score:.1f} {'acc' if task == 'pair' else 'F1'}{seeds_txt} |")
        for side in [r for r in group if r["side"].startswith("xstilts")]:
            dyn = next((r for r in group if r["side"] == "trainer-dynamic"), None)
            mx = next((r for r in group if r["side"] == "trainer-max_length"), None)
            parts = []
            if model in REAL_VOCAB:
                goals.append(f"* {model}/{task}, {side['side']}: " + "; ".join(_real_vocab_goals(side, group)))
                continue
            if dyn:
                parts.append(f"{side['ex_s'] / dyn['ex_s']:.2f}x trainer-dynamic (goal >= 1.5: "
                             f"{'met' if side['ex_s'] / dyn['ex_s'] >= 1.5 else 'NOT met'}; on the same real tokens "
                             f"1.5x needs MFU >= 1.5 x {dyn['mfu']:.1f}% = {1.5 * dyn['mfu']:.0f}%)")
            if mx:
                parts.append(f"{side['ex_s'] / mx['ex_s']:.2f}x trainer-max_length (goal >= 3: "
                             f"{'met' if side['ex_s'] / mx['ex_s'] >= 3 else 'NOT met'})")
            if dyn and _megabatches(dyn["train_rows"], dyn["batch_size"]) <= 1:
                parts.append(f"small slice: at {dyn['train_rows']} rows the Trainer's group_by_length sorts only "
                             "within single batches (megabatch = min(rows // (4 x batch), 50) batches), so the "
                             "ratio overstates a full-size run, where it sorts 50 batches at a time")
            diffs = [100 * (side["score"] - o["score"]) for o in (dyn, mx) if o]
            if diffs:
                worst = min(diffs)  # xstilts minus the better Trainer side: negative = xstilts scores lower
                parts.append(f"dev score xstilts - Trainer {', '.join(f'{d:+.1f}' for d in diffs)} points (goal: not "
                             f"more than 0.5 below: {'met' if worst >= -0.5 else 'NOT met'}"
                             f"{'; |gap| > 0.5' if max(map(abs, diffs)) > 0.5 else ''})")
            if model == "base100m" and side["max_length"] == 128:
                parts.append(f"MFU {side['mfu']:.0f}% (goal >= 40% at length 128: "
                             f"{'met' if side['mfu'] >= 40 else 'NOT met'})")
            elif model == "base100m":
                parts.append(f"MFU {side['mfu']:.0f}% at length {side['max_length']}")
            goals.append(f"* {model}/{task}, {side['side']}: " + "; ".join(parts))
    lines += ["", "Goals:", ""] + goals
    if extra.get("threads"):
        lines += ["", "## Thread settings (one tiny-model training step, batch 32 x 64, median of 20)", "",
                  "| threads | OMP_WAIT_POLICY | ms/step |", "|---:|---|---:|"]
        lines += [f"| {t['threads']} | {t['omp_wait_policy']} | {fmt(t['median_step_ms'])} |" for t in extra["threads"]]
    if extra.get("mining"):
        lines += ["", "## Retrieval mining (xstilts.metrics.bucc_mine, k=4, mode max, random unit vectors)", "",
                  "| k-NN | n x n | dim | seconds | sentences/s | of which k-NN | k-NN GFLOP/s | same pairs as faiss |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {m['knn']} | {m['n']:,} x {m['n']:,} | {m['dim']} | {m['seconds']:.2f} | {m['sentences_per_s']:,.0f} | "
                  f"{100 * m['knn_s'] / m['seconds']:.0f}% | {m['knn_gflops']:.1f} | {100 * m['same_pairs_as_faiss']:.1f}% |"
                  for m in extra["mining"]]
    mem = extra.get("memory") or []
    if mem:
        lines += ["", f"## Memory: {max(m['n'] for m in mem):,}-example intermediate set (tiny model, synthetic "
                  "XNLI-like pairs, max length 128)", "",
                  "| stage | featurized | examples | time s | peak above baseline MB | anon peak above baseline MB | note |",
                  "|---|---|---:|---:|---:|---:|---|"]
        for m in mem:
            if m["stage"] == "featurize":
                lines.append(f"| featurize | {m['patch']} | {m['n']:,} | {m['featurize_s']:.1f} | "
                             f"{m['featurize_peak_above_examples_mb']:,.0f} | {m['featurize_peak_anon_above_examples_mb']:,.0f} | "
                             f"baseline: after the examples list ({m['examples_mb']:,.0f} MB) is built; cache on disk "
                             f"{m['cache_mb']:,.0f} MB{'; ' + m['note'] if m.get('note') else ''} |")
            else:
                lines.append(f"| train {m['steps']} steps | from cache | {m['n']:,} | {m['wall_s']:.1f} | "
                             f"{m['train_peak_above_model_mb']:,.0f} | {m['train_peak_anon_above_model_mb']:,.0f} | "
                             f"baseline: model footprint ({m['model_footprint_mb']:,.0f} MB: weights, AdamW state, one "
                             f"step at 32 x 128); {m['examples_per_s']:,.0f} ex/s |")
    lines += ["", "Reproduce: `" + meta["command"] + "`", ""]
    return "\n".join(lines)


def _real_vocab_goals(side: dict, group: list[dict]) -> list[str]:
    """Issue 14's goals on the 250k-vocabulary models: >= 1.3x the Trainer's best configuration in examples/s,
    <= 60 % of its peak training memory, dev score within 0.5 points of it (me5-small) and of xstilts' dense path."""
    dyn = next((r for r in group if r["side"] == "trainer-dynamic"), None)
    dense = next((r for r in group if r["side"] == "xstilts+dense_embeddings"), None)
    parts = []
    if dyn and side is not dense:
        speed, mem = side["ex_s"] / dyn["ex_s"], side["peak_train_mb"] / dyn["peak_train_mb"]
        parts.append(f"{speed:.2f}x trainer-dynamic (goal >= 1.3: {'met' if speed >= 1.3 else 'NOT met'})")
        parts.append(f"peak memory {mem:.0%} of trainer-dynamic's (goal <= 60%: {'met' if mem <= 0.6 else 'NOT met'})")
    for other, name in ((dyn, "trainer-dynamic"), (dense, "xstilts dense path")):
        if other and other is not side:
            d = 100 * (side["score"] - other["score"])
            parts.append(f"dev score {d:+.1f} points vs {name} (goal |gap| <= 0.5: {'met' if abs(d) <= 0.5 else 'NOT met'})")
    if dense and side is not dense:
        parts.append(f"{side['ex_s'] / dense['ex_s']:.2f}x and {side['peak_train_mb'] / dense['peak_train_mb']:.0%} "
                     "of the memory of xstilts' dense path")
    return parts or ["no comparison side ran"]


def _megabatches(rows: int, batch_size: int) -> int:
    """Batches per megabatch of the Trainer's LengthGroupedSampler (transformers.trainer_pt_utils)."""
    return max(1, min(rows // (batch_size * 4), 50))


def _rounds(r) -> str:
    rounds = r.get("rounds_ex_s") or []
    return f" (rounds: {', '.join(f'{x:,.1f}' for x in rounds)})" if len(rounds) > 1 else ""


def _groups(runs):
    out = {}
    for r in runs:
        out.setdefault((r["model"], r["task"]), []).append(r)
    return out.items()


# ---------------------------------------------------------------- main


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a few-minute version: smaller slices and fewer steps")
    p.add_argument("--models", default="tiny,base100m")
    p.add_argument("--tasks", default="pair,qa")
    p.add_argument("--sides", default=",".join(SIDES))
    p.add_argument("--xstilts-variants", default="current",
                   help="current = xstilts as is; other names = patch bundles/patches from bench/patches.py "
                        "(e.g. current,compiled)")
    p.add_argument("--repeats", type=int, default=1,
                   help="rounds over all sides; the table keeps each side's best round (robust to other load)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--omp-wait", default="passive", choices=("passive", "active", "default"))
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128, help="sentence pairs")
    p.add_argument("--qa-max-length", type=int, default=384, help="span QA windows (run_qa.py's default)")
    p.add_argument("--qa-doc-stride", type=int, default=128, help="span QA window overlap (run_qa.py's default)")
    p.add_argument("--vocab", type=int, default=16000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--base-train-pair", type=int, default=0, help="base100m: XNLI training examples (default 512)")
    p.add_argument("--base-train-qa", type=int, default=0, help="base100m: TyDiQA training questions (default 64)")
    p.add_argument("--base-dev-pair", type=int, default=0)
    p.add_argument("--base-dev-qa", type=int, default=0)
    p.add_argument("--train-limit", type=int, default=0, help="every case: this many training examples (smoke runs)")
    p.add_argument("--dev-limit", type=int, default=0, help="every case: this many dev examples (smoke runs)")
    p.add_argument("--mem-n", type=int, default=0, help="intermediate-set size (default 1M; --quick 200k); 0 = default")
    p.add_argument("--mining-n", type=int, default=10_000)
    p.add_argument("--skip", default="", help="comma list of: memory, mining, threads")
    p.add_argument("--workdir", default=str(BENCH / ".work"))
    p.add_argument("--out", default=str(BENCH / "results.md"))
    args = p.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    work = Path(args.workdir)
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    os.environ.update({k: v for k, v in child_env(args).items() if k.startswith(("OMP_", "MKL_"))})
    set_threads(args.threads)

    def log(m):
        print(m, file=sys.stderr, flush=True)

    t_start = time.perf_counter()
    import torch
    import transformers

    meta = {"date": time.strftime("%Y-%m-%d %H:%M"), "cpu": _cpu_name(), "threads": args.threads,
            "omp_wait": args.omp_wait.upper() if args.omp_wait != "default" else "(unset)",
            "torch": torch.__version__, "transformers": transformers.__version__, "load_start": load_average(),
            "command": "python bench/run.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    log(f"load average {meta['load_start']}; measuring the matmul peak")
    meta["peak"] = matmul_peak(2048, seconds=4.0)
    log(f"  {meta['peak']['gflops_best']:.1f} GFLOP/s (median {meta['peak']['gflops_median']:.1f})")
    wanted = [m for m in args.models.split(",") if m]
    unknown = sorted(set(wanted) - {m for m, _ in plan_keys()})
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; known: {sorted({m for m, _ in plan_keys()})}")
    needs_tiny = {"threads", "memory"} - skip
    models = build_assets(work, args.vocab, log, names=wanted + (["tiny"] if needs_tiny else []))
    plan = settings(args)
    variants = [v for v in args.xstilts_variants.split(",") if v]
    runs = []
    for model in [m for m in args.models.split(",") if m]:
        shape = model_shape(models[model])
        for task in [t for t in args.tasks.split(",") if t]:
            s = plan[(model, task)]
            s = {**s, "train_limit": args.train_limit or s["train_limit"], "dev_limit": args.dev_limit or s["dev_limit"]}
            jobs = [(side, variant) for side in [x for x in args.sides.split(",") if x]
                    for variant in (variants if side == "xstilts" else [""])]
            best = {}
            for rep in range(args.repeats):  # rounds of every side, so load from other processes hits all sides
                for side, variant in jobs:
                    name = side if variant in ("", "current") else f"{side}+{variant}"
                    log(f"{model} / {task} / {name}" + (f" (round {rep + 1}/{args.repeats})" if args.repeats > 1 else "") + " ...")
                    # Round r trains with seed + r on every side: the rounds' dev scores show the seed spread that
                    # any comparison of dev scores between sides has to beat.
                    cmd = side_cmd(side, models[model], task, s, args, "" if variant in ("", "current") else variant,
                                   seed=args.seed + rep)
                    r = run_child(cmd, args, log)
                    if r is None:
                        continue
                    r.update(model=model, side=name, shape=shape, max_length=lengths(task, args)[0], batch_size=args.batch_size)
                    r = derive(r, shape, max(meta["peak"]["gflops_best"], r.get("probe_gflops") or 0))
                    log(f"  {r['ex_s']:.1f} ex/s, {r['tok_s']:.0f} tok/s, MFU {r['mfu']:.1f}%, eval {r['eval_ex_s']:.1f} ex/s, "
                        f"dev {r['score']:.4f}, train {r['train_s']:.1f}s (process {r['process_s']:.0f}s)")
                    prev = best.get(name)
                    r["rounds_ex_s"] = (prev["rounds_ex_s"] if prev else []) + [r["ex_s"]]
                    r["rounds_eval_ex_s"] = (prev["rounds_eval_ex_s"] if prev else []) + [r["eval_ex_s"]]
                    r["rounds_score"] = (prev["rounds_score"] if prev else []) + [r["score"]]
                    r["rounds_peak_train_mb"] = (prev["rounds_peak_train_mb"] if prev else []) + [r["peak_train_mb"]]
                    if prev is None or r["ex_s"] > prev["ex_s"]:  # best round: the least disturbed
                        if prev is not None:
                            r["eval_s"] = min(r["eval_s"], prev["eval_s"])
                        best[name] = r
                    else:
                        for k in ("rounds_ex_s", "rounds_eval_ex_s", "rounds_score", "rounds_peak_train_mb"):
                            prev[k] = r[k]
                        prev["eval_s"] = min(r["eval_s"], prev["eval_s"])
            for r in best.values():  # the dev score of a side: the mean over its rounds' seeds
                r["score"] = sum(r["rounds_score"]) / len(r["rounds_score"])
            runs += [best[side if v in ("", "current") else f"{side}+{v}"] for side, v in jobs
                     if (side if v in ("", "current") else f"{side}+{v}") in best]
    extra = {}
    if "threads" not in skip:
        import threads

        log("thread settings ...")
        extra["threads"] = threads.run(str(models["tiny"]), 32, 64, 20)
    if "mining" not in skip:
        extra["mining"] = []
        for patch in ("", "torch_knn"):
            log(f"mining ({patch or 'current'}) ...")
            r = subprocess.run([sys.executable, str(BENCH / "mining.py"), "--n", str(args.mining_n), "--threads",
                                str(args.threads), "--patch", patch], env=child_env(args), capture_output=True, text=True)
            extra["mining"] += json.loads(r.stdout) if r.returncode == 0 else []
    if "memory" not in skip:
        extra["memory"] = memory(args, models, log)
    meta["load_end"] = load_average()
    # The machine's matmul rate: the best seen in this run (start-up measurement or any side's probe);
    # on a shared machine the start-up measurement alone can be low.
    meta["peak_used"] = max([meta["peak"]["gflops_best"]] + [r.get("probe_gflops") or 0 for r in runs])
    runs = [derive(r, r["shape"], meta["peak_used"]) for r in runs]
    meta["wall_min"] = (time.perf_counter() - t_start) / 60
    text = report(meta, runs, extra)
    (work / "results.json").write_text(json.dumps(
        {"meta": meta, "runs": [{k: v for k, v in r.items() if "lengths" not in k} for r in runs], "extra": extra},
        indent=1))
    Path(args.out).write_text(text)
    print(text)


def memory(args, models, log) -> list[dict]:
    """Featurize the synthetic set, then train from the cache."""
    n = args.mem_n or (200_000 if args.quick else 1_000_000)
    out = []
    log(f"memory: featurize {n:,} pairs ...")
    r = run_child([str(BENCH / "memory_1m.py"), "--stage", "featurize", "--n", str(n), "--model", str(models["tiny"]),
                   "--threads", str(args.threads), "--work", str(args.workdir)], args, log)
    if r:
        out.append(r)
        log(f"  {r['featurize_s']:.0f}s, peak +{r['featurize_peak_above_examples_mb']:.0f} MB")
    log(f"memory: train from the {n:,}-row cache ...")
    r = run_child([str(BENCH / "memory_1m.py"), "--stage", "train", "--n", str(n), "--model", str(models["tiny"]),
                   "--threads", str(args.threads), "--work", str(args.workdir), "--steps", "300"], args, log)
    if r:
        out.append(r)
        log(f"  peak +{r['train_peak_above_model_mb']:.0f} MB above the model")
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip() + f" ({os.cpu_count()} cores)"
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
