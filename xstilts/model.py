"""One shared encoder from transformers, one head per task (or per shared label space)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .errors import ConfigError
from .families import get_family
from .tasks import TaskSpec


def resolve_model_name(name: str) -> str:
    """A transformers hub name, a local folder, or a built-in alias such as ``me5-small``."""
    if name in ("me5-small", "multilingual-e5-small"):
        from .me5 import resolve

        return resolve(name)
    return name


def load_tokenizer(name: str):
    """The model's tokenizer; decoder tokenizers get pad/cls/sep from eos/bos so every family can use them."""
    from transformers import AutoTokenizer

    path = resolve_model_name(name)
    try:
        tok = AutoTokenizer.from_pretrained(path)
    except OSError as e:
        raise ConfigError(f"model {name!r}: cannot load its tokenizer ({e}). Give a local folder, "
                          "a transformers hub name (with network), or 'me5-small'.") from None
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token or tok.unk_token
    if tok.cls_token is None:
        tok.cls_token = tok.bos_token or tok.eos_token
    if tok.sep_token is None:
        tok.sep_token = tok.eos_token
    return tok


def is_decoder(encoder) -> bool:
    """Causal LMs (Llama, Mistral, Qwen, ...) pool the last token; bidirectional encoders the first."""
    cfg = encoder.config
    return bool(getattr(cfg, "is_decoder", False)) or cfg.model_type in DECODER_TYPES


DECODER_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "phi", "phi3", "gpt2", "gpt_neox",
                 "falcon", "olmo", "olmo2", "bloom", "mixtral", "stablelm", "granite"}


def add_lora(encoder, lora: dict):
    """Wrap the encoder with LoRA adapters (peft); only adapters and heads are trained."""
    from .extras import require

    peft = require("peft", "LoRA (the config's lora: setting)")
    LoraConfig, get_peft_model = peft.LoraConfig, peft.get_peft_model

    cfg = LoraConfig(r=lora.get("r", 8), lora_alpha=lora.get("alpha", 16), lora_dropout=lora.get("dropout", 0.05),
                     target_modules=lora.get("target_modules") or "all-linear", bias="none")
    return get_peft_model(encoder, cfg)


def merge_lora(encoder):
    """Fold LoRA adapters into the base weights, so the next phase loads a plain transformers model."""
    return encoder.merge_and_unload() if hasattr(encoder, "merge_and_unload") else encoder


def load_encoder(name: str):
    from transformers import AutoModel

    path = resolve_model_name(name)
    try:
        return AutoModel.from_pretrained(path, attn_implementation="sdpa")
    except (OSError, ValueError) as e:
        if isinstance(e, ValueError) and "sdpa" in str(e):
            return AutoModel.from_pretrained(path)
        raise ConfigError(f"model {name!r}: cannot load it ({e}). Give a local folder, "
                          "a transformers hub name (with network), or 'me5-small'.") from None


class MultiTaskModel(nn.Module):
    """A shared encoder and a ``ModuleDict`` of heads.

    Tasks whose specs name the same ``head`` share it (e.g. the NLI tasks of ANLI+).
    """

    def __init__(self, encoder: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.pool_last = is_decoder(encoder)
        self.heads = nn.ModuleDict()
        self.task_heads: dict[str, tuple[str, str]] = {}  # task -> (family, head name)

    @property
    def hidden_size(self) -> int:
        return self.encoder.config.hidden_size

    def add_task(self, spec: TaskSpec, vocab_size: int | None = None) -> None:
        self.task_heads[spec.name] = (spec.family, spec.head_name)
        family = get_family(spec.family)
        if not family.TRAINS or spec.head_name in self.heads:  # retrieval: no head
            return
        self.heads[spec.head_name] = family.make_head(self.hidden_size, spec, vocab_size=vocab_size,
                                                      input_embeddings=self.encoder.get_input_embeddings())

    def hidden(self, batch: dict, output_hidden_states: bool = False):
        out = self.encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                           output_hidden_states=output_hidden_states)
        return out

    def forward(self, task: str, batch: dict):
        """Loss (or None without labels) and the family's logits for one task's batch."""
        family, head = self.task_heads[task]
        family = get_family(family)
        hidden = self.hidden(batch).last_hidden_state
        if self.pool_last and family.POOLED_HEAD:
            # Sequence heads read position 0; in a causal LM only the last real token has seen the whole input.
            last = batch["attention_mask"].sum(1) - 1
            hidden = hidden.clone()
            hidden[:, 0] = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        return family.loss_and_logits(self.heads[head], hidden, batch)

    # ------------------------------------------------------------ persistence

    def save_heads(self, path: Path) -> None:
        tensors = {k: v.detach().contiguous().cpu() for k, v in self.heads.state_dict().items()}
        save_file(tensors, str(path / "heads.safetensors"))
        (path / "heads.json").write_text(json.dumps(self.task_heads, indent=1))

    def load_heads(self, path: Path) -> None:
        self.heads.load_state_dict(load_file(str(path / "heads.safetensors")))


def model_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every weight once (tied tensors are stored once by safetensors' save_model)."""
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
