"""xstilts.train.fast_dropout: CPU dropout masks from SFC64, installed into the encoder by the training loop
(the ``train.fast_dropout`` setting)."""

import json

import pytest
import torch

from xstilts.train.fast_dropout import (ATTENTION, FastDropout, attention, fast_dropout, installed, keep_mask,
                                        missing_api, use)
from xstilts.model import load_encoder


def test_keep_mask_rate_and_reproducibility():
    torch.manual_seed(0)
    a = keep_mask((500, 400), 0.1)
    torch.manual_seed(0)
    b = keep_mask((500, 400), 0.1)
    c = keep_mask((500, 400), 0.1)
    assert a.dtype == torch.bool and a.shape == (500, 400)
    assert torch.equal(a, b) and not torch.equal(b, c)  # seeded by torch's generator, a new mask per call
    # 200k Bernoulli(0.9) draws: standard deviation of the mean 0.00067
    assert abs(a.float().mean().item() - 0.9) < 0.004
    assert abs(keep_mask((200_000,), 0.5).float().mean().item() - 0.5) < 0.005
    assert keep_mask((3, 5, 7), 0.3).shape == (3, 5, 7)  # sizes that are not a multiple of 4


def test_fast_dropout_scales_kept_values_and_its_gradient():
    x = torch.randn(64, 33, requires_grad=True)
    torch.manual_seed(1)
    y = fast_dropout(x, 0.25)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)  # d y / d x = mask / (1 - p)
    assert torch.equal(fast_dropout(x, 0.25, training=False), x)
    assert torch.equal(fast_dropout(x, 0.0), x)
    assert torch.count_nonzero(fast_dropout(x, 1.0)) == 0


@pytest.mark.parametrize("causal", [False, True])
def test_attention_math_path_equals_sdpa_without_dropout(causal):
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    class Module:
        is_causal = causal

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 4, 10, 8).unbind(0)
    mask = None
    if not causal:
        mask = torch.ones(2, 1, 10, 10, dtype=torch.bool)
        mask[1, :, :, 7:] = False
    ref, _ = sdpa_attention_forward(Module(), q, k, v, mask)
    out, _ = attention(Module(), q, k, v, mask, dropout=1e-9)  # takes the math path; drops ~nothing
    assert out.shape == (2, 10, 4, 8)
    assert torch.allclose(ref, out, atol=1e-5)
    # with dropout, rows of attention probabilities lose mass: the output differs, deterministically per seed
    torch.manual_seed(3)
    d1, _ = attention(Module(), q, k, v, mask, dropout=0.5)
    torch.manual_seed(3)
    d2, _ = attention(Module(), q, k, v, mask, dropout=0.5)
    assert torch.equal(d1, d2) and not torch.allclose(d1, ref, atol=1e-3)



def test_attention_dropout_keeps_the_expected_output():
    """Inverted dropout on attention probabilities: E[output] = the output without dropout.

    With the identity as values the output is the (dropped, rescaled) attention matrix itself, so every element
    is 0 or prob / (1 - p), and the mean of output / prob estimates E[mask] / (1 - p) = 1."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    class Module:
        is_causal = False

    torch.manual_seed(0)
    q, k = torch.randn(2, 2, 4, 64, 16).unbind(0)
    eye = torch.eye(64).expand(2, 4, 64, 64)
    ref, _ = sdpa_attention_forward(Module(), q, k, eye, None)  # the attention probabilities, (2, 64, 4, 64)
    p = 0.3  # 1 / (1 - p) = 1.43 and 1 / p = 3.33: a rescale by the wrong one fails
    out, _ = attention(Module(), q, k, eye, None, dropout=p)
    kept = out != 0
    assert torch.allclose(out[kept], ref[kept] / (1 - p), rtol=1e-5, atol=0)
    n = out.numel()  # 32768 elements; each ratio is 0 or 1 / (1 - p): sd of the mean sqrt(p / (1 - p) / n) = 0.0036
    assert abs((out / ref).mean().item() - 1.0) < 4 * (p / (1 - p) / n) ** 0.5

def test_use_installs_and_removes_it_without_changing_outputs_or_saved_config(tiny_model, tmp_path):
    from transformers import AutoModel

    enc = load_encoder(str(tiny_model))
    assert not installed(enc)  # the training loop decides (train.fast_dropout), not the loader
    use(enc, True)
    assert enc.config._attn_implementation == ATTENTION
    assert any(isinstance(m, FastDropout) for m in enc.modules())
    assert not any(type(m) is torch.nn.Dropout for m in enc.modules())
    plain = AutoModel.from_pretrained(tiny_model, attn_implementation="sdpa").eval()
    enc.eval()
    ids = torch.randint(5, enc.config.vocab_size, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    ref = plain(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(enc(input_ids=ids, attention_mask=mask).last_hidden_state, ref, atol=1e-6)
    enc.train()
    torch.manual_seed(0)
    a = enc(input_ids=ids, attention_mask=mask).last_hidden_state
    torch.manual_seed(0)
    b = enc(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(a, b) and not torch.allclose(a, ref, atol=1e-4)  # dropout is on, and reproducible
    enc.save_pretrained(tmp_path)
    assert ATTENTION not in (tmp_path / "config.json").read_text()
    assert json.loads((tmp_path / "config.json").read_text())["hidden_dropout_prob"] == 0.1
    # train.fast_dropout: false -> torch's dropout and SDPA again, the same modules and rates
    use(enc, False)
    assert enc.config._attn_implementation == "sdpa" and not installed(enc)
    assert sorted(m.p for m in enc.modules() if type(m) is torch.nn.Dropout) == \
        sorted(m.p for m in plain.modules() if type(m) is torch.nn.Dropout)


def test_attention_dropout_is_unbiased_over_many_draws():
    """The mean of N dropped-out attention outputs equals SDPA's output without dropout.

    Each output element is sum_j a_ij m_ij / (1 - p) v_j with m_ij ~ Bernoulli(1 - p): its variance is
    p / (1 - p) sum_j a_ij^2 v_j^2, so the mean of N draws has standard deviation sd = sqrt(that / N). The
    tolerance is 5 sd per element (two-sided 6e-7 each; over these 2 x 2 x 6 x 8 = 192 elements a false
    failure has probability < 1e-4, and the test is seeded). The 1/65536 rounding of p biases the mean by a
    factor 1 - 4e-6, far below 5 sd."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    class Module:
        is_causal = False

    torch.manual_seed(0)
    q, k, v = torch.randn(3, 2, 2, 6, 8).unbind(0)  # (batch, heads, length, head dim)
    p, n = 0.3, 4000
    ref, _ = sdpa_attention_forward(Module(), q, k, v, None)  # (batch, length, heads, head dim)
    total = torch.zeros_like(ref, dtype=torch.float64)
    for _ in range(n):
        out, _ = attention(Module(), q, k, v, None, dropout=p)
        total += out.double()
    a = torch.softmax(q @ k.transpose(-1, -2) * q.shape[-1] ** -0.5, dim=-1).double()
    sd = (p / (1 - p) * (a ** 2) @ (v.double() ** 2) / n).sqrt().transpose(1, 2)
    err = (total / n - ref.double()).abs()
    assert (err < 5 * sd).all(), f"worst |mean - sdpa| / sd = {(err / sd).max():.2f}"
    assert (err / sd).mean() > 0.1  # the draws differ: an all-equal (dropout-free) path would sit at 0


def test_dropout_reaches_the_attention_function_in_training_only(tiny_model, monkeypatch):
    """If transformers ever stops passing ``dropout=`` to attention functions, CPU training would silently lose
    attention dropout: the registered function must see p > 0 in training mode and 0 in eval mode."""
    from transformers import AttentionInterface

    enc = use(load_encoder(str(tiny_model)), True)
    p = enc.config.attention_probs_dropout_prob
    assert p > 0
    seen = []

    def spy(module, query, key, value, attention_mask, dropout: float = 0.0, **kwargs):
        seen.append(dropout)
        return attention(module, query, key, value, attention_mask, dropout=dropout, **kwargs)

    monkeypatch.setitem(AttentionInterface._global_mapping, ATTENTION, spy)
    ids = torch.randint(5, enc.config.vocab_size, (2, 9))
    enc.train()(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert seen == [p] * enc.config.num_hidden_layers
    seen.clear()
    enc.eval()(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert seen == [0.0] * enc.config.num_hidden_layers


def test_without_the_attention_api_it_falls_back_to_sdpa_with_a_one_line_warning(tiny_model, monkeypatch):
    import transformers.masking_utils

    assert missing_api() is None  # the installed transformers has what the attention swap needs
    monkeypatch.delattr(transformers.masking_utils, "sdpa_mask")
    assert "sdpa_mask" in missing_api()
    enc = load_encoder(str(tiny_model))
    with pytest.warns(UserWarning) as caught:
        use(enc, True)
    assert len(caught) == 1 and "\n" not in str(caught[0].message) and "fast_dropout" in str(caught[0].message)
    assert enc.config._attn_implementation == "sdpa"  # torch's SDPA, with its own attention dropout
    assert any(isinstance(m, FastDropout) for m in enc.modules())  # hidden-layer dropout needs no transformers API


def test_the_setting_is_hash_neutral_at_its_default():
    """train.fast_dropout enters a phase's config (hence its hash) only when off: existing phase keys hold."""
    from xstilts.config import TrainConfig, validate

    assert "fast_dropout" not in TrainConfig().model_dump()
    assert TrainConfig().model_dump() == TrainConfig(fast_dropout=True).model_dump()
    assert TrainConfig(fast_dropout=False).model_dump()["fast_dropout"] is False
    cfg = validate({"target": {"train": {"fast_dropout": False}}})
    assert validate(cfg.model_dump()).target.train.fast_dropout is False  # the dump reads back the same
