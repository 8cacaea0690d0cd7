"""Typed run configuration: YAML plus ``key=value`` overrides, validated by pydantic.

Every field has a default and a description; unknown keys and wrong types are
errors that name the key. A config names registry entries (``"xnli"``), never
import paths, and nothing in it is executed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_serializer

from .errors import ConfigError
from . import families as family_list
from .families import FAMILIES


NOT_ZERO_SHOT = "not zero-shot"


def selection_mark(selection: str) -> str:
    """The tag a setting's label carries when its checkpoints were picked on target-language dev sets
    (``selection: target-dev``), so every table and report shows those results are not zero-shot."""
    return "" if selection == "en-dev" else f" [{selection} selection: {NOT_ZERO_SHOT}]"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainConfig(_Strict):
    """Optimisation of one training phase."""

    lr: float = Field(2e-5, gt=0, description="peak learning rate (AdamW)")
    batch_size: int = Field(32, ge=1, description="examples per optimizer step, before accumulation")
    grad_accum: int = Field(1, ge=1, description="micro-batches accumulated per optimizer step")
    epochs: float = Field(3.0, gt=0, description="passes over the training data (ignored when max_steps is set)")
    max_steps: int | None = Field(None, ge=1, description="optimizer steps; overrides epochs")
    warmup_ratio: float = Field(0.1, ge=0, le=1, description="fraction of steps with linear warmup")
    weight_decay: float = Field(0.01, ge=0)
    max_grad_norm: float = Field(1.0, gt=0, description="gradient clipping norm")
    eval_every: int = Field(500, ge=1, description="steps between English dev evaluations and checkpoints")
    patience: int | None = Field(None, ge=1, description="early stopping: evaluations without improvement")
    max_length: int = Field(128, ge=8, description="maximum tokens per input")
    doc_stride: int = Field(64, ge=0, description="span QA: overlap between context windows")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description="auto: bf16 where the hardware has it")
    group_by_length: bool = True
    limit: int | None = Field(None, ge=1, description="use at most this many training examples per task")
    dev_limit: int | None = Field(None, ge=1, description="use at most this many dev examples")
    fraction: float = Field(1.0, gt=0, le=1, description="fraction of the training examples to use (data-scale studies)")
    freeze_embeddings: bool = Field(False, description="keep the word-embedding table fixed (cheap on CPU)")
    embedding_rows: Literal["auto", "dense"] = Field(
        "auto", description="auto: train only the word-embedding rows the training data uses (exact; dense where "
                            "the loss reads every row); dense: always the whole table")
    fast_dropout: bool = Field(True, description="CPU training: dropout masks from numpy's SFC64 instead of torch's "
                                                 "bernoulli_ (1.05x at ~100M parameters; xstilts.train.fast_dropout)")

    @model_serializer(mode="wrap")
    def _fast_dropout_hash_neutral(self, handler):
        """``fast_dropout`` is dumped (so enters phase hashes) only when off: hashes from before it existed hold."""
        out = handler(self)
        if self.fast_dropout:
            out.pop("fast_dropout", None)
        return out


class MixtureConfig(_Strict):
    rule: Literal["proportional", "capped", "temperature", "uniform"] = "proportional"
    cap: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, gt=0)


class MLMConfig(_Strict):
    """Phase 1: continued masked-LM training on multilingual text."""

    files: list[str] = Field(default_factory=list, description="text files, one passage per line")
    mode: Literal["off", "phase", "mix"] = Field("off", description="phase: before phase 2; mix: a task in phase 2")
    train: TrainConfig = Field(default_factory=lambda: TrainConfig(lr=5e-5, epochs=1))


class IntermediateConfig(_Strict):
    """Phase 2: English intermediate training (none, one task or a mixture)."""

    tasks: list[str] = Field(default_factory=list, description="task or mixture names; empty = no intermediate phase")
    mixture: MixtureConfig = Field(default_factory=MixtureConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    seed: int = 0
    languages: list[str] | None = Field(None, description="training languages (default: each task's train_lang)")
    keep_weights: bool = Field(True, description="write the trained encoder and keep the checkpoints; false: keep "
                                                 "only done.json (timings, history), for timing studies; such a "
                                                 "phase cannot feed a target phase")


class TargetConfig(_Strict):
    """Phase 3: target fine-tuning on English, then phase 4 zero-shot evaluation."""

    tasks: list[str] = Field(default_factory=list, description="target task names")
    seeds: list[int] = Field(default_factory=lambda: [0])
    train_task: str | None = Field(None, description="train on this task's English data instead of the target's own train_task")
    train_split: str = Field("train", description="split of the training task used for fine-tuning")
    train: TrainConfig = Field(default_factory=TrainConfig)


class EvalConfig(_Strict):
    languages: list[str] | None = Field(None, description="default: every language of the target")
    split: str | None = Field(None, description="default: the task's eval_split")
    limit: int | None = Field(None, ge=1, description="evaluate at most this many examples per language")
    batch_size: int = Field(64, ge=1)
    retrieval_layer: int | Literal["middle"] = Field("middle", description="encoder layer pooled for retrieval")


class TaskDef(_Strict):
    """A user task defined in the config (same fields as TaskSpec)."""

    name: str
    family: str = Field(description=f"one of {', '.join(FAMILIES)}")
    languages: list[str] = Field(default_factory=lambda: ["en"])
    files: dict[str, str]
    format: str = "jsonl"
    labels: list[str] = Field(default_factory=list)
    metrics: list[str] = Field(default_factory=lambda: ["accuracy"])
    train_task: str | None = None
    head: str | None = None
    eval_split: str = "test"
    dev_split: str = "dev"
    options: dict = Field(default_factory=dict)

    @field_validator("family")
    @classmethod
    def _known_family(cls, v: str) -> str:
        if v not in family_list.FAMILIES:  # read at validation time
            raise ValueError(f"unknown family {v!r}; families: {', '.join(family_list.FAMILIES)}")
        return v


class LoraSettings(_Strict):
    """LoRA adapters (peft) for large models: only adapters and heads are trained; merged after each phase."""

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | None = Field(None, description="default: every linear layer")


class RunConfig(_Strict):
    """One pipeline: [MLM] -> [intermediate] -> target fine-tuning -> zero-shot evaluation."""

    model: str = Field("me5-small", description="transformers name, local folder, or 'me5-small'; encoders or causal LMs")
    lora: LoraSettings | None = Field(None, description="train with LoRA adapters (7B/70B decoders)")
    gradient_checkpointing: bool = Field(False, description="recompute activations in backward (large models)")
    data_dir: str | None = Field(None, description="XTREME-style data folder; relative task files resolve here")
    workdir: str = Field("runs", description="where phase outputs, caches and results are kept")
    tasks: list[TaskDef] = Field(default_factory=list, description="extra task definitions")
    mlm: MLMConfig = Field(default_factory=MLMConfig)
    intermediate: IntermediateConfig = Field(default_factory=IntermediateConfig)
    target: TargetConfig = Field(default_factory=TargetConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    skip_invalid: bool = Field(False, description="skip malformed records (counted and reported) instead of failing")
    selection: Literal["en-dev", "target-dev"] = Field(
        "en-dev", description="which dev set picks the target checkpoint: en-dev (English, the XTREME zero-shot "
                              "protocol) or target-dev (target-language dev sets: NOT zero-shot, labelled so)")
    log_with: list[str] = Field(default_factory=list, description="experiment trackers through accelerate: "
                                                                  "tensorboard, wandb, mlflow, comet_ml, aim, ...")
    logging_dir: str | None = Field(None, description="the trackers' folder (default <workdir>/logs)")

    @field_validator("log_with")
    @classmethod
    def _known_trackers(cls, names: list[str]) -> list[str]:
        from .tracking import tracker_names

        unknown = [n for n in names if n not in tracker_names()]
        if unknown:
            raise ValueError(f"unknown tracker {unknown} (one of {', '.join(tracker_names())})")
        return names

    def identity(self) -> dict:
        """The config that names a run (its id): without where it is logged, and without ``selection`` at its
        default (so run ids from before the setting existed stay the same)."""
        exclude = {"log_with", "logging_dir"} | ({"selection"} if self.selection == "en-dev" else set())
        return self.model_dump(exclude=exclude)


def _set(tree: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = tree
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted!r}: {k!r} is not a section")
    node[keys[-1]] = value


def parse_overrides(pairs: list[str]) -> dict:
    tree: dict = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"override {pair!r} is not of the form key=value")
        key, raw = pair.split("=", 1)
        _set(tree, key.strip(), yaml.safe_load(raw) if raw else None)
    return tree


def merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def invalid(e: ValidationError, source: str, what: str = "config") -> ConfigError:
    """One line per pydantic error: the dotted key, the problem, and the value given."""
    lines = []
    for err in e.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        lines.append(f"  {key}: {msg}" + (f" (got {err['input']!r})" if err["type"] != "extra_forbidden" and not isinstance(err.get("input"), dict) else ""))
    return ConfigError(f"{source}: invalid {what}\n" + "\n".join(lines))


def validate(raw: dict, source: str = "config") -> RunConfig:
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as e:
        raise invalid(e, source) from None


def read_yaml(path: Path, what: str = "config file") -> dict:
    """A YAML file whose top level is a mapping (safe loader: no code runs); ConfigError otherwise."""
    if not path.exists():
        raise ConfigError(f"{what} not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    return raw


def load(path: str | Path | None, overrides: list[str] = ()) -> RunConfig:
    """Read a YAML config (or none), apply ``key=value`` overrides, validate."""
    raw: dict = {}
    if path is not None:
        path = Path(path)
        raw = read_yaml(path)
        if raw.get("data_dir") and not Path(raw["data_dir"]).is_absolute():
            raw["data_dir"] = str((path.parent / raw["data_dir"]).resolve())
    raw = merge(raw, parse_overrides(list(overrides)))
    cfg = validate(raw, str(path) if path else "config")
    if cfg.data_dir and not Path(cfg.data_dir).is_dir():
        raise ConfigError(f"data_dir: folder not found: {cfg.data_dir}")
    for f in cfg.mlm.files:
        if not Path(f).exists():
            raise ConfigError(f"mlm.files: file not found: {f}")
    return cfg
