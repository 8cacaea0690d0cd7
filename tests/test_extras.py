"""Optional extras: a feature whose package is missing exits with one line naming the extra to install.

Missing packages are simulated with ``sys.modules[name] = None`` (``import name`` then raises ImportError).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from xstilts.cli import main
from xstilts.errors import XstiltsError
from xstilts.extras import EXTRAS, MissingExtra

PYPROJECT = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
EXTRA_DEPS = PYPROJECT["project"]["optional-dependencies"]
# import name -> distribution name where they differ
DISTRIBUTION = {"faiss": "faiss-cpu"}


def _names(reqs):
    import re

    return {re.split(r"[<>=\[ ]", r, maxsplit=1)[0] for r in reqs}


def test_every_optional_module_is_in_its_extra_not_in_core_and_test_installs_all():
    core = _names(PYPROJECT["project"]["dependencies"])
    for module, extra in EXTRAS.items():
        dist = DISTRIBUTION.get(module, module)
        assert dist in _names(EXTRA_DEPS[extra]), (module, extra)
        assert dist not in core, module
    assert EXTRA_DEPS["all"] == [f"xstilts[{','.join(sorted(set(EXTRAS.values()), key=list(EXTRA_DEPS).index))}]"]
    assert "xstilts[all]" in EXTRA_DEPS["test"] and {"pytest", "jsonschema"} <= _names(EXTRA_DEPS["test"])


def test_grid_executor_ray_without_ray_exits_with_the_install_hint(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    grid = tmp_path / "grid.yaml"
    grid.write_text("base: {model: none, workdir: w}\nsettings: [{name: none}]\ntargets: [xnli]\nseeds: [0]\n")
    assert main(["grid", str(grid), "--executor", "ray"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["xstilts: error: xstilts grid --executor ray needs the 'ray' package: pip install 'xstilts[ray]'"]
    assert not (tmp_path / "w").exists()  # failed before anything ran


def test_lora_without_peft(monkeypatch):
    from xstilts.model import add_lora

    monkeypatch.setitem(sys.modules, "peft", None)
    with pytest.raises(MissingExtra, match=r"LoRA .* needs the 'peft' package: pip install 'xstilts\[lora\]'$"):
        add_lora(object(), {"r": 4})


def test_retrieval_without_faiss(monkeypatch):
    from xstilts import metrics

    monkeypatch.setitem(sys.modules, "faiss", None)
    emb = np.eye(3, dtype=np.float32)
    with pytest.raises(MissingExtra, match=r"pip install 'xstilts\[retrieval\]'$"):
        metrics.tatoeba_hits(emb, emb)


def test_demo_without_babel_and_translate_without_sentencepiece(monkeypatch):
    from xstilts import demo, translate

    monkeypatch.setitem(sys.modules, "babel", None)
    monkeypatch.setitem(sys.modules, "babel.core", None)
    with pytest.raises(MissingExtra, match=r"demo tasks .* pip install 'xstilts\[demo\]'$"):
        demo.collect_names(["de"])
    monkeypatch.setitem(sys.modules, "sentencepiece", None)
    with pytest.raises(MissingExtra, match=r"xstilts translate .* pip install 'xstilts\[translate\]'$"):
        translate.MTModel("Helsinki-NLP/opus-mt-en-de")
    assert issubclass(MissingExtra, XstiltsError)  # the CLI prints it as one line and exits 2
