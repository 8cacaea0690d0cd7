"""Measured alternatives to the core's choices, applied as monkeypatches (prototype first, then a core diff).

Each entry of ``PATCHES`` is a function that patches ``xstilts`` in this process.
``apply("a,b")`` applies them in order (bundle names expand, see ``BUNDLES``) and returns the names applied.

The speed-ups first prototyped here are in the core now: fused AdamW on CPU (``xstilts.train.parts._adamw``),
batches that read only the columns collate needs (``families.base.collate_view``, for training and
prediction), padding by one numpy fill (``families.base.pad``), vectorised span-QA decoding
(``span_qa.decode``), chunked featurization (``data.featurized``) and dropout masks from SFC64
(``xstilts.train.fast_dropout``; ``torch_dropout`` measures torch's own). What is left did not win here:

* ``foreach_adamw``: multi-tensor AdamW instead of the core's fused one;
* ``dense_embeddings``: the whole word-embedding table trained every step (before exact active rows);
* ``torch_knn``: k-NN by torch GEMM instead of faiss (faiss was faster: the mining table of results.md);
* ``eager_attention``: eager attention instead of SDPA;
* ``compile_encoder``: ``torch.compile`` of the encoder (slower per step on CPU here, and a minute of
  compiling: ``bench/compile_steps.py``).
"""

from __future__ import annotations

PATCHES = {}


def patch(fn):
    PATCHES[fn.__name__] = fn
    return fn


def apply(names: str) -> list[str]:
    out = []
    for name in [n for n in expand(names).split(",") if n]:
        if name not in PATCHES:
            raise SystemExit(f"unknown patch {name!r}; known: {', '.join(PATCHES)}")
        PATCHES[name]()
        out.append(name)
    return out


# ---------------------------------------------------------------- optimizer


@patch
def foreach_adamw():
    """The alternative: ``foreach=True`` (multi-tensor, not fused)."""
    import torch

    base = torch.optim.AdamW

    class AdamW(base):
        def __init__(self, params, **kw):
            kw["fused"] = False
            kw["foreach"] = True
            super().__init__(params, **kw)

    torch.optim.AdamW = AdamW


# ---------------------------------------------------------------- word embeddings


@patch
def dense_embeddings():
    """The whole word-embedding table trained densely (``embedding_rows: dense``), instead of the core's exact
    active-row training (``xstilts.active_rows``): the A/B for speed, memory and dev score."""
    from xstilts import active_rows

    choose = active_rows.choose

    def dense(model, tasks, cfg, **kw):
        return choose(model, tasks, cfg.model_copy(update={"embedding_rows": "dense"}), **kw)

    active_rows.choose = dense


# ---------------------------------------------------------------- retrieval


@patch
def torch_knn():
    """``metrics._knn_ip`` as blocked ``torch.mm`` + ``topk`` instead of faiss ``IndexFlatIP``:
    the same exact search, through torch's GEMM (which runs near this CPU's matmul peak)."""
    from xstilts.metrics import retrieval as metrics

    metrics._knn_ip = knn_ip


def knn_ip(query, database, k, block: int = 2048):
    import numpy as np
    import torch

    q, d = torch.from_numpy(np.ascontiguousarray(query)), torch.from_numpy(np.ascontiguousarray(database))
    sims = np.empty((q.shape[0], k), dtype=np.float32)
    inds = np.empty((q.shape[0], k), dtype=np.int64)
    for start in range(0, q.shape[0], block):
        v, i = torch.topk(q[start : start + block] @ d.T, k, dim=1)
        sims[start : start + block], inds[start : start + block] = v.numpy(), i.numpy()
    return sims, inds


# ---------------------------------------------------------------- model


@patch
def eager_attention():
    """Measure eager attention instead of SDPA (load_encoder asks for sdpa)."""
    from transformers import AutoModel

    from xstilts import model as m

    def load_encoder(name):
        return AutoModel.from_pretrained(m.resolve_model_name(name), attn_implementation="eager")

    m.load_encoder = load_encoder


@patch
def torch_dropout():
    """torch's own dropout (``bernoulli_`` masks) instead of ``xstilts.train.fast_dropout``: as ``train.fast_dropout: false``."""
    from xstilts.train import fast_dropout as fd

    use = fd.use
    fd.use = lambda model, enabled: use(model, False)


@patch
def compile_encoder():
    """``torch.compile`` the encoder (inductor, dynamic shapes: dynamic padding changes them every batch)."""
    import torch

    from xstilts import model as m

    load = m.load_encoder

    def load_encoder(name):
        enc = load(name)
        enc.forward = torch.compile(enc.forward, dynamic=True)
        return enc

    m.load_encoder = load_encoder


# ---------------------------------------------------------------- bundles


BUNDLES = {
    "alternatives": "foreach_adamw,eager_attention",  # the core's fused AdamW and SDPA, each swapped for the other
    "compiled": "compile_encoder",
}


def expand(names: str) -> str:
    return ",".join(BUNDLES.get(n, n) for n in (names or "").split(",") if n)
