"""Thread settings: one training step of a model under intra-op threads 1/2 and OpenMP wait policy
default/PASSIVE (each in a fresh process: libgomp reads OMP_WAIT_POLICY once, at load).

    python bench/threads.py --model bench/.work/models/tiny-v16000 [--batch 32 --length 64 --steps 20]

On a CPU shared with other busy processes, OpenMP workers that spin-wait
(the libgomp default) steal the cores they wait for; PASSIVE makes them sleep.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(model: str, batch: int, length: int, steps: int) -> float:
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    logging.set_verbosity_error()
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(0)
    m = AutoModelForSequenceClassification.from_pretrained(model, num_labels=3, attn_implementation="sdpa")
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True)
    ids = torch.randint(5, m.config.vocab_size, (batch, length))
    lab = torch.randint(0, 3, (batch,))

    def step():
        m(input_ids=ids, attention_mask=torch.ones_like(ids), labels=lab).loss.backward()
        opt.step()
        opt.zero_grad()

    for _ in range(2):
        step()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def run(model: str, batch: int, length: int, steps: int, threads=(1, 2), policies=("default", "PASSIVE")) -> list[dict]:
    out = []
    for policy in policies:
        for n in threads:
            env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
            env["OMP_NUM_THREADS"] = str(n)
            if policy != "default":
                env["OMP_WAIT_POLICY"] = policy
            r = subprocess.run([sys.executable, __file__, "--child", "--model", model, "--batch", str(batch),
                                "--length", str(length), "--steps", str(steps)], env=env, capture_output=True, text=True)
            ms = float(r.stdout.strip().splitlines()[-1]) * 1000 if r.returncode == 0 else float("nan")
            out.append({"threads": n, "omp_wait_policy": policy, "median_step_ms": ms})
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=str(Path(__file__).resolve().parent / ".work" / "models" / "tiny-v16000"))
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=64)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--child", action="store_true")
    a = p.parse_args()
    if a.child:
        print(child(a.model, a.batch, a.length, a.steps))
    else:
        print(json.dumps(run(a.model, a.batch, a.length, a.steps), indent=1))
