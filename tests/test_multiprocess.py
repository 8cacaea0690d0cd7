"""Two CPU processes under ``accelerate launch`` (DDP over gloo), as on a multi-GPU node.

The pipeline runs through ``xstilts.cli run`` in both ranks; an entry script records
every file write with the rank that made it. Checked: the run finishes, rank 0 alone
writes (each ``done.json`` once), the saved weights load, the loss goes down, the
ranks trained on different batches with replicas kept equal, and a rerun reuses
every phase. The decoder (tiny Llama + LoRA) also runs under the repository's FSDP
config (``configs/accelerate/fsdp-8gpu.yaml``, FSDP2), with accelerate told that the
two CPU processes are GPU ones talking over gloo: accelerate sets FSDP up only on
accelerators, but FSDP2 itself runs on CPU tensors.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import TOY_TASKS, WORDS

# Wraps the writers of the pipeline so each call is logged as "<what> <path>" in writes/rank<R>.log, then runs the CLI.
ENTRY = r'''
import functools, os, sys

if os.environ.get("XSTILTS_TEST_FSDP_ON_CPU"):
    os.environ["ACCELERATE_TORCH_DEVICE"] = "cpu"
    import accelerate.state
    from accelerate.utils import DistributedType

    accelerate.state.PartialState._prepare_backend = (
        lambda self, cpu=False, sagemaker_dp=False, backend=None: ("gloo", DistributedType.MULTI_GPU))

rank = os.environ.get("RANK", "0")
out = open(os.path.join(os.environ["XSTILTS_TEST_WRITES"], f"rank{rank}.log"), "a", buffering=1)

def logged(what, fn, arg=0):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        out.write(f"{what} {args[arg] if len(args) > arg else kwargs}\n")
        return fn(*args, **kwargs)
    return wrapper

import datasets, transformers
from xstilts import pipeline, store
from xstilts.train import checkpoint
from xstilts.model import MultiTaskModel

pipeline.write_json_atomic = logged("json", pipeline.write_json_atomic)
checkpoint.save = logged("checkpoint", checkpoint.save)
datasets.Dataset.save_to_disk = logged("dataset", datasets.Dataset.save_to_disk, 1)
transformers.PreTrainedModel.save_pretrained = logged("encoder", transformers.PreTrainedModel.save_pretrained, 1)
MultiTaskModel.save_heads = logged("heads", MultiTaskModel.save_heads, 1)
store.Store.add_run = logged("store", store.Store.add_run, 1)

from xstilts.cli import main
sys.exit(main(sys.argv[1:]))
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


FSDP_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "accelerate" / "fsdp-8gpu.yaml"


def launch(tmp_path: Path, config: Path, writes: Path, fsdp: bool = False, timeout: int = 180):
    """``accelerate launch`` of ``xstilts run CONFIG`` in 2 CPU processes (torchrun underneath, gloo backend)."""
    entry = tmp_path / "entry.py"
    entry.write_text(ENTRY)
    writes.mkdir(parents=True, exist_ok=True)
    if fsdp:
        how, env = ["--config_file", str(FSDP_CONFIG)], {"XSTILTS_TEST_FSDP_ON_CPU": "1"}
    else:  # without GPUs, --multi_gpu starts torchrun workers and ACCELERATE_USE_CPU makes them DDP on CPU
        how, env = ["--multi_gpu", "--num_machines", "1", "--dynamo_backend", "no"], {"ACCELERATE_USE_CPU": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", *how, "--num_processes", "2", "--mixed_precision", "no",
           "--main_process_port", str(_free_port()), str(entry), "run", str(config)]
    env = {**os.environ, **env, "OMP_NUM_THREADS": "1", "XSTILTS_TEST_WRITES": str(writes),
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    return proc


def write_config(path: Path, model: Path, data: Path, workdir: Path, **extra) -> Path:
    cfg = {
        "model": str(model), "data_dir": str(data), "workdir": str(workdir), "tasks": TOY_TASKS,
        "intermediate": {"tasks": ["toy_pair"],
                         "train": {"lr": 1e-3, "batch_size": 8, "grad_accum": 2, "max_steps": 6, "eval_every": 3,
                                   "max_length": 32}},
        "target": {"tasks": ["toy_topic"], "seeds": [0],
                   "train": {"lr": 3e-3, "batch_size": 16, "max_steps": 40, "eval_every": 20, "max_length": 32}},
        "eval": {"languages": ["en", "de"]},
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def writes_of(writes: Path, rank: int) -> list[tuple[str, str]]:
    f = writes / f"rank{rank}.log"
    return [tuple(line.split(" ", 1)) for line in f.read_text().splitlines()] if f.exists() else []


def done_of(workdir: Path, kind: str) -> dict:
    (done,) = (workdir / "phases").glob(f"{kind}-*/done.json")
    return json.loads(done.read_text())


def test_two_processes_train_on_different_batches_and_rank0_alone_writes(tmp_path, tiny_model, toy_data):
    work = tmp_path / "work"
    config = write_config(tmp_path / "run.yaml", tiny_model, toy_data, work)
    launch(tmp_path, config, tmp_path / "writes1")

    # rank 0 wrote everything, each phase's done.json once; rank 1 wrote nothing
    assert writes_of(tmp_path / "writes1", 1) == []
    w0 = writes_of(tmp_path / "writes1", 0)
    done_writes = [p for what, p in w0 if what == "json" and p.endswith("done.json")]
    assert len(done_writes) == len(set(done_writes)) == 3
    assert sum(what == "encoder" for what, _ in w0) == 2 and sum(what == "store" for what, _ in w0) == 1
    assert any(what == "dataset" for what, _ in w0)  # the featurized cache, built by rank 0 only
    assert not list(work.rglob("*.tmp*")) and not list(work.rglob("*.old"))

    # the weights load; the phases trained on 2 ranks with different batches and equal replicas
    from transformers import AutoModel

    (target,) = (work / "phases").glob("target-*")
    AutoModel.from_pretrained(target / "encoder")
    from safetensors.torch import load_file

    assert load_file(str(target / "heads.safetensors"))
    assert load_file(str(target / "checkpoints" / "best" / "model.safetensors"))
    for kind, micro in (("intermediate", 6 * 2), ("target", 40)):  # steps x grad_accum micro-batches per rank
        summary = done_of(work, kind)
        assert summary["timings"]["processes"] == 2
        r0, r1 = summary["per_rank"]
        assert r0["batches"] == r1["batches"] == micro
        assert r0["input_digest"] != r1["input_digest"]
        assert r0["weights_sum"] == pytest.approx(r1["weights_sum"], rel=1e-9)  # DDP kept the replicas equal

    history = done_of(work, "target")["history"]
    first = sum(h["loss"] for h in history[:5]) / 5
    last = sum(h["loss"] for h in history[-5:]) / 5
    assert last < first * 0.8, (first, last)
    rows = done_of(work, "eval")["rows"]
    assert {r["lang"] for r in rows if r["split"] == "test"} == {"en", "de"}
    assert [r["value"] for r in rows if r["lang"] == "en" and r["split"] == "test"][0] > 0.7

    # rerun: every phase reused, nothing trained or written again except the store row
    out = launch(tmp_path, config, tmp_path / "writes2").stdout
    assert "3 phases (3 reused" in out
    assert writes_of(tmp_path / "writes2", 1) == []
    assert {what for what, _ in writes_of(tmp_path / "writes2", 0)} <= {"store"}


@pytest.mark.parametrize("mode", ["ddp", "fsdp2"])
def test_two_processes_decoder_with_lora(tmp_path, toy_data, mode):
    """The 7B/70B path in small: a tiny Llama with LoRA adapters, trained in 2 processes with DDP or FSDP2."""
    import torch
    from xstilts.tiny import build_tiny_model

    corpus = [f.format(x) for lang in WORDS.values() for k in ("animal", "food") for x in lang[k] for f in lang["frame"]]
    llama = build_tiny_model(tmp_path / "llama", corpus, vocab_size=300, hidden=64, arch="llama")
    work = tmp_path / "work"
    config = write_config(tmp_path / "run.yaml", llama, toy_data, work, lora={"r": 4, "alpha": 8},
                          intermediate={"tasks": []})
    launch(tmp_path, config, tmp_path / "writes", fsdp=mode == "fsdp2")
    assert writes_of(tmp_path / "writes", 1) == []
    summary = done_of(work, "target")
    assert summary["timings"]["processes"] == 2
    r0, r1 = summary["per_rank"]
    assert r0["input_digest"] != r1["input_digest"]
    if mode == "ddp":
        assert r0["weights_sum"] == pytest.approx(r1["weights_sum"], rel=1e-9)
    history = summary["history"]
    assert sum(h["loss"] for h in history[-5:]) < sum(h["loss"] for h in history[:5])
    en = [r["value"] for r in done_of(work, "eval")["rows"] if r["lang"] == "en" and r["split"] == "test"][0]
    assert en > 0.7
    from safetensors import safe_open

    (target,) = (work / "phases").glob("target-*")
    with safe_open(str(target / "encoder" / "model.safetensors"), "pt") as f:
        assert f.keys() and not any("lora" in k for k in f.keys())  # merged into a plain Llama
    with safe_open(str(target / "checkpoints" / "last" / "model.safetensors"), "pt") as f:
        assert any("lora" in k for k in f.keys()) and any(k.startswith("heads.") for k in f.keys())  # full, gathered
    optim = torch.load(target / "checkpoints" / "last" / "optimizer.pt", weights_only=True)["state"]
    assert all(isinstance(k, str) for k in optim) == (mode == "fsdp2")  # FSDP: keyed by parameter name
