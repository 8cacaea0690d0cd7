"""Tiny random XLM-R-architecture models for tests, built in-process with no downloads.

Example:
    >>> path = build_tiny_model("/tmp/tiny", corpus=["some text", "noch mehr Text"])
    >>> # path is a transformers folder: AutoModel / AutoTokenizer load it.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CORPUS = [
    "the cat sat on the mat", "a dog runs in the park", "birds fly over the city",
    "die Katze sitzt auf der Matte", "ein Hund läuft im Park", "le chat est sur le tapis",
    "el perro corre en el parque", "猫はマットの上に座った", "собака бежит в парке", "القطة على السجادة",
]


def build_tokenizer(corpus: list[str], vocab_size: int = 1000):
    """A SentencePiece-style Unigram tokenizer trained on ``corpus``, wrapped for transformers."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=specials, unk_token="<unk>")
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=512,
    )


def build_tiny_model(out_dir, corpus: list[str] | None = None, *, hidden: int = 32, layers: int = 2,
                     heads: int = 2, vocab_size: int = 1000, seed: int = 0, arch: str = "xlm-roberta") -> Path:
    """Write a randomly initialised model and its tokenizer to ``out_dir``.

    Args:
        arch: ``"xlm-roberta"`` (a bidirectional encoder) or ``"llama"`` (a causal
            decoder standing in for 7B/70B LLMs in tests).
    """
    import torch

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(list(corpus or DEFAULT_CORPUS), vocab_size)
    ids = dict(pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    torch.manual_seed(seed)
    if arch == "llama":
        from transformers import LlamaConfig, LlamaModel

        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                             num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=hidden * 3,
                             max_position_embeddings=512, **ids)
        LlamaModel(config).save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
        return out
    from transformers import XLMRobertaConfig, XLMRobertaModel

    config = XLMRobertaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=hidden * 4, max_position_embeddings=514, type_vocab_size=1, **ids,
    )
    XLMRobertaModel(config).save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
