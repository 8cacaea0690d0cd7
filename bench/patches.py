"""Prototypes of core speed-ups, applied as monkeypatches so they can be measured before the core changes.

Each entry of ``PATCHES`` is a function that patches ``xstilts`` in this process.
``apply("a,b")`` applies them in order and returns the names applied.
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
def fused_adamw():
    """train.py builds ``AdamW(..., fused=device.type == "cuda")``: on CPU that is the for-loop
    implementation (torch's foreach default is also CUDA-only). Fused AdamW has a CPU kernel
    (torch >= 2.4); the Trainer's default optimizer (``adamw_torch_fused``) already uses it."""
    import torch

    base = torch.optim.AdamW
    if getattr(base, "_bench_fused", False):
        return

    class AdamW(base):
        _bench_fused = True

        def __init__(self, params, **kw):
            kw.pop("foreach", None)
            kw["fused"] = True
            super().__init__(params, **kw)

    torch.optim.AdamW = AdamW


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


# ---------------------------------------------------------------- data path


TRAIN_ONLY_DROP = ("offsets", "example_idx", "word_start")  # decode-only: no family collate reads them


@patch
def lean_batch():
    """``_Stream`` reads only the columns collate needs (span QA's per-token ``offsets`` are
    half the bytes of a row and cost ~8 ms a batch to turn into Python lists)."""
    from xstilts import train as tr

    class Stream(tr._Stream):
        def __init__(self, rows, batch_size, seed, group):
            drop = [c for c in TRAIN_ONLY_DROP if c in rows.column_names]
            super().__init__(rows.remove_columns(drop) if drop else rows, batch_size, seed, group)

    tr._Stream = Stream


@patch
def numpy_pad():
    """``families.base.pad`` fills one numpy array instead of one tensor slice per row."""
    import numpy as np
    import torch

    from xstilts.families import base, classification, mlm, multiple_choice, retrieval, span_qa, tagging

    def pad(seqs, value):
        lengths = np.fromiter(map(len, seqs), dtype=np.int64, count=len(seqs))
        out = np.full((len(seqs), int(lengths.max())), value, dtype=np.int64)
        out[np.arange(out.shape[1])[None, :] < lengths[:, None]] = np.fromiter(
            (t for s in seqs for t in s), dtype=np.int64, count=int(lengths.sum()))
        return torch.from_numpy(out)

    for mod in (base, classification, mlm, multiple_choice, retrieval, span_qa, tagging):
        if hasattr(mod, "pad"):
            mod.pad = pad


@patch
def lean_predict():
    """``evaluate.predict`` also reads only what collate needs (not span QA's offsets)."""
    from xstilts import evaluate as ev

    inner = ev.predict

    def predict(model, task, family, rows, tokenizer, batch_size=64):
        drop = [c for c in TRAIN_ONLY_DROP if c in rows.column_names]
        return inner(model, task, family, rows.remove_columns(drop) if drop else rows, tokenizer, batch_size)

    ev.predict = predict


@patch
def fast_qa_decode():
    """span_qa.decode scores a window's k x k candidate spans in one tensor op instead of
    400 Python-level tensor indexings (and computes the end top-k once, not once per start)."""
    from xstilts.families import span_qa

    span_qa.decode = qa_decode


def qa_decode(logits_rows, rows, examples, spec):
    """Same predictions as ``span_qa.decode``: float32 sums, first maximum in (start, end) top-k order wins."""
    import torch

    from xstilts.families.span_qa import MAX_ANSWER_TOKENS, N_BEST

    best = [(float("-inf"), "") for _ in examples]
    null = [float("inf") for _ in examples]
    for logits, row in zip(logits_rows, rows):
        logits = torch.as_tensor(logits)
        i, offsets = row["example_idx"], row["offsets"]
        start_l, end_l = logits[:, 0], logits[:, 1]
        null[i] = min(null[i], float(start_l[0] + end_l[0]))
        k = min(N_BEST, len(offsets))
        s_idx, e_idx = start_l.topk(k).indices, end_l.topk(k).indices
        ctx = torch.as_tensor([o[0] >= 0 for o in offsets])
        span = e_idx[None, :] - s_idx[:, None]
        ok = ctx[s_idx][:, None] & ctx[e_idx][None, :] & (span >= 0) & (span + 1 <= MAX_ANSWER_TOKENS)
        if not bool(ok.any()):
            continue
        values = (start_l[s_idx][:, None] + end_l[e_idx][None, :]).masked_fill(~ok, float("-inf"))
        flat = int(values.flatten().argmax())  # the first maximum, in the loop order of the original
        value = float(values.flatten()[flat])
        if value > best[i][0]:
            s, e = int(s_idx[flat // k]), int(e_idx[flat % k])
            best[i] = (value, examples[i]["context"][offsets[s][0] : offsets[e][1]].strip())
    if spec.options.get("version_2"):
        return [text if value > null[i] else "" for i, (value, text) in enumerate(best)]
    return [text for _, text in best]


@patch
def torch_knn():
    """``metrics._knn_ip`` as blocked ``torch.mm`` + ``topk`` instead of faiss ``IndexFlatIP``:
    the same exact search, through torch's GEMM (which runs near this CPU's matmul peak)."""
    from xstilts import metrics

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


# ---------------------------------------------------------------- featurization


@patch
def chunked_featurize():
    """``featurized`` featurizes 10k examples at a time into Arrow shards instead of holding
    every column of every row in Python lists before ``Dataset.from_dict``."""
    from xstilts import data

    data.featurized = chunked_featurized


CHUNK = 10_000


def chunked_featurized(spec, examples, tokenizer, *, max_length, cache_dir, source_key, stride=None):
    """Drop-in for ``xstilts.data.featurized`` (same cache key, same rows)."""
    import hashlib
    import json
    import os
    import shutil
    from pathlib import Path

    import datasets

    from xstilts.data import tokenizer_fingerprint
    from xstilts.families import get_family

    family = get_family(spec.family)
    key = hashlib.sha256(json.dumps([
        tokenizer_fingerprint(tokenizer), spec.name, spec.version, spec.family, family.FEATURIZE_VERSION,
        sorted(spec.labels), max_length, stride, source_key,
    ]).encode()).hexdigest()[:20]
    path = Path(cache_dir) / "features" / f"{spec.name}-{key}"
    if (path / "dataset_info.json").exists():
        return datasets.load_from_disk(str(path))
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    shards_dir = tmp.with_name(tmp.name + ".shards")
    shutil.rmtree(shards_dir, ignore_errors=True)
    shards_dir.mkdir(parents=True)
    if spec.family == "span_qa":  # its window overlap depends on the longest question of the whole set
        from xstilts.families import span_qa

        stride = span_qa.effective_stride(examples, tokenizer, max_length, stride) if hasattr(
            span_qa, "effective_stride") else _qa_stride(examples, tokenizer, max_length, stride)
    shards = []
    for start in range(0, max(len(examples), 1), CHUNK):
        cols = family.featurize(examples[start : start + CHUNK], tokenizer, spec, max_length, stride)
        if "example_idx" in cols:
            cols["example_idx"] = [i + start for i in cols["example_idx"]]
        cols["length"] = [len(x) for x in cols["input_ids"]]
        shard = datasets.Dataset.from_dict(cols)
        del cols
        shard_path = shards_dir / f"{len(shards):05d}"
        shard.save_to_disk(str(shard_path))
        shards.append(datasets.load_from_disk(str(shard_path)))  # memory-mapped
    ds = datasets.concatenate_datasets(shards) if len(shards) > 1 else shards[0]
    ds.save_to_disk(str(tmp))
    del ds, shards
    shutil.rmtree(shards_dir, ignore_errors=True)
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
    return datasets.load_from_disk(str(path))


def _qa_stride(examples, tokenizer, max_length, stride):
    """span_qa.featurize's own rule, over all examples (so every chunk uses the same overlap)."""
    from xstilts.families import span_qa

    longest = 0
    for start in range(0, len(examples), CHUNK):
        _, n = span_qa._questions(examples[start : start + CHUNK], tokenizer, max_length)
        longest = max(longest, n)
    room = max_length - longest - 4
    return min(stride if stride is not None else max_length // 4, max(0, room - 1))


# ---------------------------------------------------------------- bundles


BUNDLES = {"proposed": "fused_adamw,lean_batch,numpy_pad,chunked_featurize,lean_predict,fast_qa_decode"}


def expand(names: str) -> str:
    return ",".join(BUNDLES.get(n, n) for n in (names or "").split(",") if n)
