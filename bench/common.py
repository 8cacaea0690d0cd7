"""Shared pieces of the benchmark: assets (tokenizer, models), data slices, FLOPs, memory, timing.

Nothing here is imported by xstilts; the benchmark only uses xstilts' public API.
"""

from __future__ import annotations

import json
import os
import random
import resource
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
DATA = Path(os.environ.get("XSTILTS_SHARED_DATA", BENCH.parent.parent / "shared" / "data"))


def set_threads(n: int) -> None:
    """The same intra-op thread count for every side (call before any torch work)."""
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(n)
    import torch

    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass


# ---------------------------------------------------------------- memory


def rss_mb() -> float:
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:  # pragma: no cover
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def anon_mb() -> float:
    """Anonymous resident memory (heap, Python objects, tensors), without file-backed pages such as
    the memory-mapped Arrow cache, which the kernel can drop and re-read at will."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class PeakSampler:
    """Samples current RSS every ``every`` seconds in a thread: the peak inside a window.

    ``ru_maxrss`` is the peak of the whole process lifetime; this gives the peak
    of one phase (e.g. training after featurization in the same process).
    """

    def __init__(self, every: float = 0.05):
        import threading

        self.every, self.peak, self.peak_anon, self._stop = every, rss_mb(), anon_mb(), threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb())
            self.peak_anon = max(self.peak_anon, anon_mb())
            self._stop.wait(self.every)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, rss_mb())
        self.peak_anon = max(self.peak_anon, anon_mb())


# ---------------------------------------------------------------- data


def xnli(split: str, limit: int | None):
    from xstilts.io import read_xnli

    rows = read_xnli(DATA / "xnli" / f"{split}-en.tsv")
    return rows[:limit] if limit else rows


def tydiqa(split: str, limit: int | None):
    from xstilts.io import read_tydiqa

    rows = read_tydiqa(DATA / "tydiqa" / split / f"tydiqa.goldp.en.{split}.json",
                       duplicate_ids="rename" if split == "train" else "error")  # the train file reuses ids
    return rows[:limit] if limit else rows


def corpus() -> list[str]:
    """Real text for the benchmark tokenizer: XNLI dev in 15 languages, English XNLI test, TyDiQA/XQuAD English.

    Multilingual text in the corpus keeps English segmentation about as coarse as
    XLM-R's (a 16k English-only vocabulary would give unrealistically short inputs).
    """
    from xstilts.io import read_xnli, read_xquad

    text = []
    for f in sorted((DATA / "xnli").glob("dev-*.tsv")):
        for e in read_xnli(f):
            text += [e["text_a"], e["text_b"]]
    for e in xnli("test", None):
        text += [e["text_a"], e["text_b"]]
    seen = set()
    for e in tydiqa("train", None) + read_xquad(DATA / "xquad" / "xquad.en.json"):
        text.append(e["question"])
        if e["context"] not in seen:
            seen.add(e["context"])
            text.append(e["context"])
    return text


def synthetic_pairs(n: int, seed: int = 0, words: list[str] | None = None):
    """``n`` random English-like sentence pairs (3 labels), generated lazily.

    Sentence lengths follow XNLI's rough shape: premise 8-40 words, hypothesis 4-16.
    """
    rng = random.Random(seed)
    words = words or _WORDS
    labels = ("entailment", "neutral", "contradiction")
    for _ in range(n):
        a = " ".join(rng.choices(words, k=rng.randint(8, 40)))
        b = " ".join(rng.choices(words, k=rng.randint(4, 16)))
        yield {"text_a": a.capitalize() + ".", "text_b": b.capitalize() + ".", "label": labels[rng.randrange(3)]}


_WORDS = ("the of and to a in that is was he for it with as his on be at by i this had not are but from or have an "
          "they which one you were her all she there would their we him been has when who will more no if out so said "
          "what up its about into than them can only other new some could time these two may then do first any my now "
          "such like our over man me even most made after also did many before must through back years where much your "
          "way well down should because each just those people mr how too little state good very make world still own "
          "see men work long get here between both life being under never day same another know while last might us "
          "great old year off come since against go came right used take three government committee department "
          "agreement information technology organisation everything hospital university community environment").split()


# ---------------------------------------------------------------- assets


REAL_VOCAB = ("me5-small", "xlmr-base-250k")  # models with XLM-R's 250,002-row vocabulary


def build_assets(work: Path, vocab: int, log=print, names=("tiny", "base100m")) -> dict[str, Path]:
    """The benchmark tokenizer and models ``names``, built once and reused (``work/models``).

    * ``tiny``: :func:`xstilts.tiny.build_tiny_model` (hidden 32, 2 layers) with the real-text tokenizer.
    * ``base100m``: XLM-R base shape (12 x 768, 12 heads, FFN 3072), random weights, same tokenizer.
    * ``me5-small``: multilingual-e5-small with its real weights (``xstilts.me5.resolve``: 12 x 384, 250k-row
      table = 82 % of its parameters), so dev scores are above chance.
    * ``xlmr-base-250k``: XLM-R base shape with the full vocabulary (the me5-small tokenizer, which is XLM-R's;
      250,002 rows = 69 % of 278M parameters), random weights.
    """
    out = {}
    root = work / "models"
    tiny, base = root / f"tiny-v{vocab}", root / f"base100m-v{vocab}"
    if {"tiny", "base100m"} & set(names) and not (tiny / "config.json").exists():
        from xstilts.tiny import build_tiny_model

        t0 = time.perf_counter()
        build_tiny_model(tiny, corpus(), vocab_size=vocab)
        log(f"built tokenizer (vocab {vocab}) + tiny model in {time.perf_counter() - t0:.0f}s")
    if "tiny" in names:
        out["tiny"] = tiny
    if "base100m" in names:
        from transformers import AutoTokenizer

        out["base100m"] = _xlmr_base(base, lambda: AutoTokenizer.from_pretrained(tiny))
    if set(REAL_VOCAB) & set(names):
        from xstilts.me5 import resolve

        me5 = Path(resolve("me5-small"))  # converted once into ~/.cache/xstilts/models
        if "me5-small" in names:
            out["me5-small"] = me5
        if "xlmr-base-250k" in names:
            from transformers import AutoTokenizer

            out["xlmr-base-250k"] = _xlmr_base(root / "xlmr-base-v250002", lambda: AutoTokenizer.from_pretrained(me5),
                                               vocab_size=250_002)
    return out


def _xlmr_base(folder: Path, tokenizer, vocab_size: int | None = None) -> Path:
    """An XLM-R-base-shaped model (12 x 768, 12 heads, FFN 3072) with random weights, saved with ``tokenizer()``."""
    if (folder / "config.json").exists():
        return folder
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tok = tokenizer()
    config = XLMRobertaConfig(
        vocab_size=vocab_size or len(tok), hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
        intermediate_size=3072, max_position_embeddings=514, type_vocab_size=1,
        pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    XLMRobertaModel(config, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


# ---------------------------------------------------------------- FLOPs


def model_shape(model_dir: Path) -> dict:
    cfg = json.loads((Path(model_dir) / "config.json").read_text())
    h, n_layers, ffn = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    # per layer: Q,K,V,O (4 h^2 + 4 h) + FFN (2 h ffn + ffn + h) + 2 LayerNorms (4 h)
    per_layer = 4 * h * h + 4 * h + 2 * h * ffn + ffn + h + 4 * h
    return {"hidden": h, "layers": n_layers, "non_embedding_params": n_layers * per_layer, "vocab": cfg["vocab_size"]}


def train_flops(shape: dict, lengths) -> float:
    """Model FLOPs of training on sequences of real (non-pad) ``lengths``.

    Per sequence of length l: 6 * N * l (N = non-embedding parameters: forward 2N
    per token, backward 4N) plus attention 12 * layers * hidden * l^2 (QK^T and
    AV are 2 * l^2 * hidden multiply-adds each forward; backward is twice the
    forward). Padding is not useful work and is not counted; the task head
    (<0.1% here) and embedding lookups are ignored.
    """
    n, L, d = shape["non_embedding_params"], shape["layers"], shape["hidden"]
    return float(sum(6 * n * l + 12 * L * d * l * l for l in lengths))


def eval_flops(shape: dict, lengths) -> float:
    return train_flops(shape, lengths) / 3


def matmul_peak(n: int = 2048, seconds: float = 3.0) -> dict:
    """The machine's fp32 matmul rate in this process: repeated n x n torch.mm, FLOPs = 2 n^3 each.

    Reports the best of 5 timed bursts (the machine may be shared) and the median.
    """
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        torch.mm(a, b)
    t0 = time.perf_counter()
    torch.mm(a, b)
    one = time.perf_counter() - t0
    reps = max(1, int(seconds / 5 / max(one, 1e-4)))
    rates = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(reps):
            torch.mm(a, b)
        rates.append(2 * n**3 * reps / (time.perf_counter() - t0))
    rates.sort()
    return {"n": n, "gflops_best": rates[-1] / 1e9, "gflops_median": rates[2] / 1e9}


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"
