"""xstilts.train.fast_dropout: CPU dropout masks from SFC64, installed into transformers encoders by load_encoder."""

import json

import pytest
import torch

from xstilts.train.fast_dropout import ATTENTION, FastDropout, attention, fast_dropout, keep_mask
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

def test_load_encoder_installs_it_without_changing_outputs_or_saved_config(tiny_model, tmp_path):
    from transformers import AutoModel

    enc = load_encoder(str(tiny_model))
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
