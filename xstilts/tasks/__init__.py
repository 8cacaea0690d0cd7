"""Tasks: specs (data only), the registry, the built-in catalogue (``catalog/``) and the benchmark groups
(``benchmarks``: XTREME, XTREME-R) as data."""

from .registry import expand, get, get_mixture, mixtures, names, register
from .spec import FAMILIES, HubSource, MixtureSpec, TaskSpec

__all__ = ["FAMILIES", "HubSource", "MixtureSpec", "TaskSpec", "expand", "get", "get_mixture", "mixtures", "names", "register"]
