"""Check that the prototypes in patches.py change no results: same featurized rows, same padded batches.

    python bench/check_patches.py
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    import numpy as np
    import torch

    import patches
    import xstilts
    from common import BENCH, build_assets, tydiqa, xnli
    from xstilts.data import featurized
    from xstilts.families import base
    from xstilts.model import load_tokenizer
    from xstilts.tasks import get

    xstilts._quiet_libraries()
    tok = load_tokenizer(str(build_assets(BENCH / ".work", 16000)["tiny"]))
    patches.CHUNK = 300  # many chunks, uneven last one
    cases = [("xnli", xnli("dev", 1000), None), ("tydiqa", tydiqa("dev", 440), 64), ("tydiqa", tydiqa("dev", 440), None)]
    with tempfile.TemporaryDirectory() as d:
        for name, examples, stride in cases:
            spec = get(name)
            for max_length in (64, 128):
                a = featurized(spec, examples, tok, max_length=max_length, cache_dir=Path(d) / "a",
                               source_key=json.dumps([name, stride]), stride=stride)
                b = patches.chunked_featurized(spec, examples, tok, max_length=max_length, cache_dir=Path(d) / "b",
                                               source_key=json.dumps([name, stride]), stride=stride)
                assert a.column_names == b.column_names and len(a) == len(b), (name, a, b)
                assert a.to_dict() == b.to_dict(), name
                print(f"chunked_featurize == featurized: {name} max_length={max_length} stride={stride} ({len(a)} rows)")
    # span QA decoding: random logits, and coarse ones with many exact ties
    from xstilts.families import span_qa

    spec = get("tydiqa")
    examples = tydiqa("dev", 440)
    with tempfile.TemporaryDirectory() as d:
        rows_ds = featurized(spec, examples, tok, max_length=128, cache_dir=d, source_key="decode", stride=64)
        rows = [dict(zip(rows_ds.column_names, v)) for v in zip(*rows_ds.to_dict().values())]
    gen = torch.Generator().manual_seed(0)
    for name, scale in (("random", None), ("tied", 2)):
        logits = [torch.randn(len(r["input_ids"]), 2, generator=gen) for r in rows]
        if scale:
            logits = [torch.round(x * scale) / scale for x in logits]
        assert span_qa.decode(logits, rows, examples, spec) == patches.qa_decode(logits, rows, examples, spec), name
        print(f"fast_qa_decode == decode ({name} logits, {len(rows)} windows)")

    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 1000, rng.integers(1, 50)).tolist() for _ in range(64)]
    ref = base.pad(seqs, 1)
    patches.numpy_pad()
    from xstilts.families import base as patched

    assert torch.equal(ref, patched.pad(seqs, 1)) and patched.pad(seqs, 1).dtype == torch.long
    print("numpy_pad == pad")


if __name__ == "__main__":
    main()
