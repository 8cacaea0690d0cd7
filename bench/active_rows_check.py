"""Active-row vs dense word-embedding training on a real-vocabulary model: same weights? how much memory?

Each path trains in its own process (so each has its own peak RSS) from the same seed on the same XNLI
slice, saves its weights, and the parent compares them::

    python bench/active_rows_check.py                       # me5-small, 5 steps of 16 XNLI pairs (~1-2 min)
    python bench/active_rows_check.py --model bench/.work/models/xlmr-base-v250002 --steps 3

Prints one JSON object: the max abs weight difference, each path's peak RSS, training seconds and the size
of the embedding table's gradient + AdamW moments (active rows: the compact table's).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import set_threads, xnli  # noqa: E402


def child(args) -> dict:
    set_threads(args.threads)
    import torch
    from accelerate.utils import set_seed
    from safetensors.torch import save_file

    import xstilts
    from xstilts.config import TrainConfig
    from xstilts.data import featurized
    from xstilts.model import MultiTaskModel, load_encoder, load_tokenizer
    from xstilts.tasks import get
    from xstilts.train import TrainTask, train

    xstilts._quiet_libraries()
    spec = get("xnli")
    tok = load_tokenizer(args.model)
    rows = featurized(spec, xnli("test", args.limit), tok, max_length=128, cache_dir=Path(args.work) / "cache",
                      source_key=json.dumps(["active_rows_check", args.limit]))
    set_seed(0)
    model = MultiTaskModel(load_encoder(args.model))
    model.add_task(spec)
    cfg = TrainConfig(lr=args.lr, batch_size=args.batch_size, max_steps=args.steps, eval_every=10**9,
                      weight_decay=args.weight_decay, precision="fp32", embedding_rows=args.child)
    t0 = time.perf_counter()
    result = train(model, [TrainTask(spec, rows, None)], cfg, Path(tempfile.mkdtemp(dir=args.work)), tokenizer=tok,
                   seed=0, log=lambda m: None)
    wall = time.perf_counter() - t0
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, args.out)
    emb = result.embedding
    hidden = model.encoder.config.hidden_size
    trained_rows = emb.get("active_rows", emb["vocab"])
    return {"path": emb["path"], "active_rows": emb.get("active_rows"), "vocab": emb["vocab"],
            "embedding_grad_and_adamw_mb": 3 * trained_rows * hidden * 4 / 2**20,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "train_s": result.timings["train_s"], "wall_s": wall, "steps": result.steps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="me5-small")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "xstilts-active-rows-check"))
    p.add_argument("--child", default="", help=argparse.SUPPRESS)
    p.add_argument("--out", default="", help=argparse.SUPPRESS)
    p.add_argument("--limit", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    from safetensors.torch import load_file

    Path(args.work).mkdir(parents=True, exist_ok=True)
    runs = {}
    for path in ("dense", "auto"):
        out = str(Path(args.work) / f"{path}.safetensors")
        cmd = [sys.executable, __file__, "--child", path, "--out", out, "--limit", str(args.steps * args.batch_size),
               *sys.argv[1:]]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise SystemExit(r.stderr[-3000:])
        runs[path] = json.loads(r.stdout.strip().splitlines()[-1])
    dense, active = (load_file(str(Path(args.work) / f"{p_}.safetensors")) for p_ in ("dense", "auto"))
    diff = {k: float((dense[k].double() - active[k].double()).abs().max()) for k in dense}
    worst = max(diff, key=diff.get)
    print(json.dumps({"model": args.model, "steps": args.steps, "batch_size": args.batch_size,
                      "max_abs_diff": diff[worst], "worst_tensor": worst, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
