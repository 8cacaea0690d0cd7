"""Retrieval mining throughput: BUCC ratio-margin mining (``xstilts.metrics.bucc_mine``, k=4, mode max)
on random unit-norm embeddings, and where its time goes (faiss k-NN vs the rest).

    python bench/mining.py --n 10000 --dims 384,768
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import set_threads  # noqa: E402


def run(n: int, dims: list[int], threads: int, k: int = 4, patch: str = "") -> list[dict]:
    set_threads(threads)
    import faiss
    import numpy as np

    import patches
    from xstilts.metrics import retrieval as metrics

    faiss_knn = metrics._knn_ip
    applied = patches.apply(patch)

    faiss.omp_set_num_threads(threads)
    out = []
    for d in dims:
        rng = np.random.default_rng(d)
        src = rng.standard_normal((n, d), dtype=np.float32)
        tgt = rng.standard_normal((n, d), dtype=np.float32)
        ids_s, ids_t = [f"s{i}" for i in range(n)], [f"t{i}" for i in range(n)]
        knn_s = [0.0]
        knn = metrics._knn_ip

        def timed_knn(*a):
            t = time.perf_counter()
            r = knn(*a)
            knn_s[0] += time.perf_counter() - t
            return r

        metrics._knn_ip = timed_knn
        try:
            t0 = time.perf_counter()
            pairs = metrics.bucc_mine(src, tgt, ids_s, ids_t, k=k)
            total = time.perf_counter() - t0
        finally:
            metrics._knn_ip = knn
        if applied:
            metrics._knn_ip = faiss_knn
            ref = metrics.bucc_mine(src, tgt, ids_s, ids_t, k=k)
            metrics._knn_ip = knn
            same = len({p[:2] for p in pairs} & {p[:2] for p in ref}) / max(len(ref), 1)
        out.append({"knn": "+".join(applied) or "faiss IndexFlatIP", "n": n, "dim": d, "k": k, "seconds": total,
                    "same_pairs_as_faiss": same if applied else 1.0, "knn_s": knn_s[0],
                    "sentences_per_s": 2 * n / total, "pairs": len(pairs),
                    "knn_gflops": 2 * 2 * n * n * d / knn_s[0] / 1e9})
    return out


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--dims", default="384,768")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--patch", default="", help="e.g. torch_knn (bench/patches.py)")
    a = p.parse_args()
    print(json.dumps(run(a.n, [int(x) for x in a.dims.split(",")], a.threads, patch=a.patch), indent=1))
