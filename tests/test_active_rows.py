"""Exact active-row training of the word-embedding table (xstilts/active_rows.py): the compact table plus the
closed-form weight decay of the untouched rows equals dense AdamW within float rounding (max abs diff <= 1e-6)
on single-task, mixture and SIGKILL-resumed runs; phases whose loss reads every row stay dense."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import TOY_TASKS
from xstilts.cli import main

TOL = 1e-6
WD = 0.5  # large, so the decay of untouched rows is far above the tolerance


def write_run(path, tiny_model, toy_data, workdir, rows="auto", steps=20, intermediate=True):
    train = {"lr": 3e-3, "batch_size": 8, "max_steps": steps, "eval_every": 10, "max_length": 32,
             "weight_decay": WD, "embedding_rows": rows}
    cfg = {"model": str(tiny_model), "data_dir": str(toy_data), "workdir": str(workdir), "tasks": TOY_TASKS,
           **({"intermediate": {"tasks": ["toy_pair", "toy_topic"], "train": train}} if intermediate else {}),  # a mixture
           "target": {"tasks": ["toy_topic"], "seeds": [3], "train": train},  # one task
           "eval": {"languages": ["en", "de"]}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def phase(workdir, kind):
    (p,) = (workdir / "phases").glob(f"{kind}-*")
    return p


def encoder(workdir, kind):
    return load_file(str(phase(workdir, kind) / "encoder" / "model.safetensors"))


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def hand_decay(lr, wd, steps, warmup, upto):
    """prod over optimizer steps 1..upto of (1 - lr_k * wd), lr_k from the linear warmup-then-decay schedule."""
    lam = [k / warmup if k < warmup else max(0.0, (steps - k) / (steps - warmup)) for k in range(upto)]
    return float(np.prod([1 - lr * x * wd for x in lam]))


def data_ids(tiny_model, toy_data, files) -> set[int]:
    """The token ids the featurized training rows hold (as the classification family tokenizes), plus padding."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ids = {tok.pad_token_id}
    for f in files:
        for line in (toy_data / f).read_text().splitlines():
            r = json.loads(line)
            args = (r["text_a"],) if r["text_b"] is None else (r["text_a"], r["text_b"])
            ids.update(tok(*args, truncation=True, max_length=32)["input_ids"])
    return ids


def test_active_rows_equal_dense_adamw_single_task_and_mixture(tmp_path, tiny_model, toy_data):
    for rows in ("dense", "auto"):
        assert main(["run", str(write_run(tmp_path / f"{rows}.yaml", tiny_model, toy_data, tmp_path / rows, rows))]) == 0
    start = load_file(str(tiny_model / "model.safetensors"))
    key = next(k for k in start if k.endswith("word_embeddings.weight"))
    vocab = start[key].shape[0]
    files = {"intermediate": ["pair/train-en.jsonl", "topic/train-en.jsonl"], "target": ["topic/train-en.jsonl"]}
    for kind in ("intermediate", "target"):
        done = json.loads((phase(tmp_path / "auto", kind) / "done.json").read_text())
        summary, dev = done["embedding"], [h for h in done["history"] if "dev" in h]
        best = max(dev, key=lambda h: h["dev"])["step"]  # the encoder a phase keeps: its first best dev score
        decay = hand_decay(3e-3, WD, 20, 2, best)
        ids = data_ids(tiny_model, toy_data, files[kind])
        assert summary == {"path": "active-rows", "vocab": vocab, "active_rows": len(ids)} and len(ids) < vocab
        assert json.loads((phase(tmp_path / "dense", kind) / "done.json").read_text())["embedding"]["path"] == "dense"
        dense, active = encoder(tmp_path / "dense", kind), encoder(tmp_path / "auto", kind)
        assert max_diff(dense, active) <= TOL  # the claim: active rows + closed-form decay == dense AdamW
        # dense AdamW itself moved every untouched row by exactly the hand-computed decay, by far more than TOL
        # (so an implementation that skipped or mistimed the decay fails the comparison above)
        inactive = torch.tensor(sorted(set(range(vocab)) - ids))
        before = start[key][inactive]
        assert float((dense[key][inactive] - before * decay).abs().max()) <= TOL
        assert float((before * (1 - decay)).abs().max()) > 50 * TOL
        start = dense  # the target phase starts from the intermediate phase's encoder


def test_active_rows_resumed_after_sigkill_equal_dense_adamw(tmp_path, tiny_model, toy_data):
    from test_resume_and_errors import kill_then_rerun

    from xstilts import active_rows
    from xstilts.errors import ConfigError

    killed = write_run(tmp_path / "killed.yaml", tiny_model, toy_data, tmp_path / "killed", steps=100, intermediate=False)
    kill_then_rerun(killed, tmp_path / "killed", total=100)
    last = phase(tmp_path / "killed", "target") / "checkpoints" / "last"
    ids = load_file(str(last / active_rows.CHECKPOINT_FILE))["ids"]  # the id map travels with the checkpoint
    assert json.loads((phase(tmp_path / "killed", "target") / "done.json").read_text())["embedding"]["active_rows"] == len(ids)
    dense = write_run(tmp_path / "dense.yaml", tiny_model, toy_data, tmp_path / "dense", "dense", steps=100,
                      intermediate=False)
    assert main(["run", str(dense)]) == 0
    assert max_diff(encoder(tmp_path / "dense", "target"), encoder(tmp_path / "killed", "target")) <= TOL
    # a checkpoint resumes only on the path (and with the active rows) that wrote it
    with pytest.raises(ConfigError, match="written training active rows"):
        active_rows.check_resume(last, None)


def _model_and_tasks(tiny_model, *families):
    from datasets import Dataset

    from xstilts.model import MultiTaskModel, load_encoder
    from xstilts.tasks import TaskSpec
    from xstilts.train import TrainTask

    model = MultiTaskModel(load_encoder(str(tiny_model)))
    rows = {"classification": {"input_ids": [[0, 5, 7, 2], [0, 9, 2]], "label": [0, 1]},
            "multiple_choice": {"input_ids": [[0, 11, 2, 0, 12, 2]], "choice_ids": [[[0, 11, 2], [0, 12, 2]]],
                                "label": [1]},
            "mlm": {"input_ids": [[0, 20, 21, 2]]}}
    tasks = []
    for f in families:
        spec = TaskSpec(name=f, family=f, labels=("a", "b") if f == "classification" else ())
        model.add_task(spec, vocab_size=model.encoder.get_input_embeddings().num_embeddings)
        tasks.append(TrainTask(spec, Dataset.from_dict(rows[f])))
    return model, tasks


def test_choose_collects_the_data_ids_and_keeps_dense_where_every_row_is_read(tiny_model):
    from xstilts.active_rows import choose
    from xstilts.config import TrainConfig

    model, tasks = _model_and_tasks(tiny_model, "classification", "multiple_choice")
    pad = model.encoder.config.pad_token_id
    choice, ids = choose(model, tasks, TrainConfig())
    assert ids.tolist() == sorted({0, 2, 5, 7, 9, 11, 12, pad})  # nested choice_ids too, plus padding
    assert choice.path == "active-rows" and choice.active_rows == len(ids)
    assert "active rows 8 of 137" in choice.describe()
    assert choose(model, tasks, TrainConfig(embedding_rows="dense"))[0].reason == "configured (embedding_rows: dense)"
    assert choose(model, tasks, TrainConfig(), processes=2)[0].reason == "several processes"
    mlm_model, mlm_tasks = _model_and_tasks(tiny_model, "classification", "mlm")
    assert choose(mlm_model, mlm_tasks, TrainConfig())[0].reason == "masked LM reads every row"
    model.encoder.get_input_embeddings().weight.requires_grad_(False)  # freeze_embeddings, LoRA
    assert choose(model, tasks, TrainConfig())[0].path == "frozen"


def test_compact_table_reads_the_full_rows_refuses_inactive_ids_and_keeps_padding_frozen(tiny_model):
    from xstilts.active_rows import install
    from xstilts.config import TrainConfig

    model, tasks = _model_and_tasks(tiny_model, "classification")
    full = model.encoder.get_input_embeddings()
    before = full.weight.detach().clone()
    choice, rows = install(model, tasks, TrainConfig())
    compact = model.encoder.get_input_embeddings()
    assert compact is rows.compact and not full.weight.requires_grad
    pad = model.encoder.config.pad_token_id
    ids = torch.tensor([[0, 5, 9, 2, pad]])
    out = compact(ids)
    assert torch.equal(out, before[ids])
    out.sum().backward()  # the padding row gets no gradient, as in nn.Embedding(padding_idx=pad)
    grad = compact.rows.grad
    assert float(grad[rows.compact.remap[pad]].abs().max()) == 0.0 and float(grad.abs().sum()) > 0
    with pytest.raises(RuntimeError, match=r"token ids \[6\] are outside"):
        compact(torch.tensor([[0, 6, 2]]))
    # two steps "taken" at lr 0.1 / 0.05 with weight decay 0.5: the untouched row 6 owes (1-0.05)(1-0.025)
    opt = torch.optim.AdamW([{"params": [compact.rows], "weight_decay": 0.5, "lr": 0.1}])
    rows.stepped(opt)
    opt.param_groups[0]["lr"] = 0.05
    rows.stepped(opt)
    rows.finish()
    assert model.encoder.get_input_embeddings() is full and full.weight.requires_grad
    assert torch.allclose(full.weight[6], before[6] * 0.95 * 0.975, rtol=0, atol=1e-7)
