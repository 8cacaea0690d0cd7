"""SIGKILL mid-training then rerun: resumes and ends with the uninterrupted run's numbers.
Malformed configs: a one-line error naming the key or file, exit 2, no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from conftest import TOY_TASKS
from xstilts.cli import main


def write_config(path, tiny_model, toy_data, workdir, steps=300, **extra):
    cfg = {
        "model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(workdir), "tasks": TOY_TASKS,
        "target": {"tasks": ["toy_topic"], "seeds": [3],
                   "train": {"lr": 3e-3, "batch_size": 8, "max_steps": steps, "eval_every": 10, "max_length": 32}},
        "eval": {"languages": ["en", "de", "ru"]},
        **extra,
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_step(workdir):
    for p in (workdir / "phases").glob("target-*/checkpoints/last/trainer_state.json"):
        try:
            return json.loads(p.read_text())["step"]
        except (ValueError, KeyError):
            return 0
    return 0


def kill_then_rerun(config, workdir, total: int, at: int = 30) -> int:
    """``xstilts run config``, SIGKILLed once its target phase checkpointed step ``at``; then the same command
    again, which must resume from that checkpoint and finish. Returns the step it resumed at."""
    proc = subprocess.Popen([sys.executable, "-m", "xstilts.cli", "run", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    while last_step(workdir) < at and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    step_at_kill = last_step(workdir)
    assert at <= step_at_kill < total

    rerun = subprocess.run([sys.executable, "-m", "xstilts.cli", "run", str(config)], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed from" in rerun.stdout and f"at step {step_at_kill}/{total}" in rerun.stdout
    return step_at_kill


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_sigkill_then_rerun_resumes_to_identical_metrics(tmp_path, tiny_model, toy_data, lora):
    extra = {}
    if lora:  # a tiny Llama with LoRA adapters: its checkpoints hold only the adapters and heads
        from conftest import WORDS
        from xstilts.tiny import build_tiny_model

        corpus = [f.format(x) for lang in WORDS.values() for k in ("animal", "food") for x in lang[k]
                  for f in lang["frame"]]
        tiny_model = build_tiny_model(tmp_path / "llama", corpus, vocab_size=300, hidden=64, arch="llama")
        extra = {"lora": {"r": 4, "alpha": 8}}
    killed = write_config(tmp_path / "killed.yaml", tiny_model, toy_data, tmp_path / "killed", **extra)
    kill_then_rerun(killed, tmp_path / "killed", total=300)

    if lora:
        (target,) = (tmp_path / "killed" / "phases").glob("target-*")
        assert (target / "checkpoints" / "last" / "weights.json").exists()  # resumed from a trainable-only checkpoint
    clean = write_config(tmp_path / "clean.yaml", tiny_model, toy_data, tmp_path / "clean", **extra)
    done = subprocess.run([sys.executable, "-m", "xstilts.cli", "run", str(clean)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    def metrics(workdir):
        (done,) = (workdir / "phases").glob("eval-*/done.json")
        return json.loads(done.read_text())["rows"]

    assert metrics(tmp_path / "killed") == metrics(tmp_path / "clean")


@pytest.mark.parametrize("override, needle", [
    ("target.tasks=[xnlii]", "unknown task 'xnlii'"),
    ("target.train.lrr=0.1", "target.train.lrr: unknown key"),
    ("target.train.lr=fast", "target.train.lr"),
    ("target.train.batch_size=0", "target.train.batch_size"),
    ("data_dir=/no/such/folder", "/no/such/folder"),
])
def test_bad_config_names_the_key_without_traceback(tmp_path, tiny_model, toy_data, capsys, override, needle):
    cfg = write_config(tmp_path / "c.yaml", tiny_model, toy_data, tmp_path / "w", steps=2)
    assert main(["run", str(cfg), override]) == 2
    err = capsys.readouterr().err
    assert needle in err
    assert "Traceback" not in err


def test_missing_config_file_and_missing_data_file(tmp_path, tiny_model, toy_data, capsys):
    assert main(["run", str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml" in capsys.readouterr().err
    cfg = write_config(tmp_path / "c.yaml", tiny_model, toy_data, tmp_path / "w", steps=2)
    assert main(["run", str(cfg), "eval.languages=[en,fr]", f"data_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err
    assert "train-en.jsonl" in err and "file not found" in err and "Traceback" not in err


def test_bad_record_names_file_line_and_field(tmp_path, tiny_model, toy_data, capsys):
    data = tmp_path / "data"
    (data / "topic").mkdir(parents=True)
    (data / "topic" / "train-en.jsonl").write_text('{"text_a": "a cat", "label": "animal"}\n{"text_a": "bread", "label": "drink"}\n')
    cfg = write_config(tmp_path / "c.yaml", tiny_model, data, tmp_path / "w", steps=2)
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "train-en.jsonl:2" in err and "label" in err and "'drink'" in err


def test_data_check_names_file_and_line_of_a_malformed_record(tmp_path, capsys):
    (tmp_path / "xnli").mkdir()
    (tmp_path / "xnli" / "dev-de.tsv").write_text("a\tb\tentailment\r\nnur zwei\tspalten\r\n", encoding="utf-8")
    assert main(["data", "check", str(tmp_path), "--tasks", "xnli"]) == 2
    err = capsys.readouterr().err
    assert "dev-de.tsv:2" in err and "Traceback" not in err
    assert main(["data", "check", str(tmp_path), "--tasks", "xnli", "--skip-invalid", "-v"]) == 0
    assert "de" in capsys.readouterr().out


def test_lora_checkpoint_holds_only_trainable_weights_and_restores_them(tmp_path):
    """A LoRA (7B/70B) checkpoint is the adapters and heads, not the frozen base; resume puts them back."""
    import torch
    from safetensors import safe_open

    from xstilts.train import checkpoint
    from xstilts.errors import ConfigError
    from xstilts.model import MultiTaskModel, add_lora, load_encoder
    from xstilts.tasks import get
    from xstilts.tiny import build_tiny_model

    def model(r=4):
        m = MultiTaskModel(load_encoder(str(llama)))
        m.add_task(get("xnli"))
        m.encoder = add_lora(m.encoder, {"r": r, "alpha": 8})
        return m

    llama = build_tiny_model(tmp_path / "llama", hidden=64, arch="llama")
    m = model()
    trainable = {n for n, p in m.named_parameters() if p.requires_grad}
    with torch.no_grad():
        for n, p in m.named_parameters():
            if p.requires_grad:
                p.add_(0.5)  # as if trained (LoRA B starts at zero)
    checkpoint.save(tmp_path / "ckpt", m)
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        keys = set(f.keys())
    assert keys == trainable and all("lora_" in k or k.startswith("heads.") for k in keys)
    full = sum(p.numel() for p in m.parameters())
    saved = sum(p.numel() for n, p in m.named_parameters() if n in keys)
    assert saved < full / 4

    fresh = model()  # the phase's input again: same frozen base, new adapters and head
    frozen_before = {n: p.clone() for n, p in fresh.named_parameters() if not p.requires_grad}
    checkpoint.load(tmp_path / "ckpt", fresh)
    state, ref = fresh.state_dict(), m.state_dict()
    assert all(torch.equal(state[k], ref[k]) for k in ref)  # trained weights back, frozen base unchanged
    assert all(torch.equal(p, frozen_before[n]) for n, p in fresh.named_parameters() if not p.requires_grad)
    with pytest.raises(ConfigError, match="same LoRA"):
        checkpoint.load(tmp_path / "ckpt", model(r=2))  # other adapter shapes are refused by name, not by a crash


def test_checkpoint_round_trip_restores_cpu_rng_state(tmp_path):
    """What a resume draws next equals what the killed run would have drawn next (torch, Python, numpy)."""
    import random

    import numpy as np
    import torch

    from xstilts.train import checkpoint

    model = torch.nn.Linear(3, 2)
    torch.manual_seed(11), random.seed(12), np.random.seed(13)
    torch.rand(5), random.random(), np.random.rand()  # streams somewhere in the middle, as during training
    checkpoint.save(tmp_path / "ck", model, trainer_state={"step": 7})
    want = (torch.rand(8), random.random(), np.random.rand(4))
    torch.rand(100), random.random(), np.random.rand(9)  # the process goes on (or dies and a new one starts)
    assert checkpoint.load(tmp_path / "ck", model) == {"step": 7}
    got = (torch.rand(8), random.random(), np.random.rand(4))
    assert torch.equal(got[0], want[0]) and got[1] == want[1] and np.array_equal(got[2], want[2])


class _Gpus:
    """torch.cuda's RNG functions for ``n`` devices on a machine without one (each state: a uint8 tensor)."""

    def __init__(self, n: int, seed: int):
        import torch

        g = torch.Generator().manual_seed(seed)
        self.states = [torch.randint(0, 256, (16,), dtype=torch.uint8, generator=g) for _ in range(n)]

    def install(self, monkeypatch):
        import torch

        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: len(self.states))
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in self.states])

        def set_all(states):
            assert len(states) == len(self.states)
            self.states = [s.clone() for s in states]

        def set_one(state, device):
            self.states[device] = state.clone()

        monkeypatch.setattr(torch.cuda, "set_rng_state_all", set_all)
        monkeypatch.setattr(torch.cuda, "set_rng_state", set_one)


def test_single_process_checkpoint_saves_and_restores_every_gpu_rng_state(tmp_path, monkeypatch):
    """One process driving GPUs: each device's generator is saved and restored (not only the CPU's)."""
    import torch

    from xstilts.train import checkpoint

    model = torch.nn.Linear(3, 2)
    gpus = _Gpus(2, seed=0)
    gpus.install(monkeypatch)
    saved = [s.clone() for s in gpus.states]
    checkpoint.save(tmp_path / "ck", model, trainer_state={})
    stored = torch.load(tmp_path / "ck" / "rng_torch.pt", weights_only=True)
    assert [s.tolist() for s in stored["cuda_all"]] == [s.tolist() for s in saved]
    gpus.states = _Gpus(2, seed=1).states  # training moved every device's stream on
    checkpoint.load(tmp_path / "ck", model)
    assert [s.tolist() for s in gpus.states] == [s.tolist() for s in saved]
    # resumed on one GPU: device 0 continues its own stream
    one = _Gpus(1, seed=2)
    one.install(monkeypatch)
    checkpoint.load(tmp_path / "ck", model)
    assert one.states[0].tolist() == saved[0].tolist()


def test_a_metric_the_family_cannot_compute_is_a_config_error(tmp_path, tiny_model, toy_data, capsys):
    bad = [TOY_TASKS[0], {**TOY_TASKS[1], "metrics": ["f1"]}]  # a classification task scores accuracy only
    cfg = write_config(tmp_path / "c.yaml", tiny_model, toy_data, tmp_path / "w", steps=2, tasks=bad)
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "task 'toy_topic': metric 'f1' in metrics; the classification family computes accuracy" in err
    assert "Traceback" not in err
