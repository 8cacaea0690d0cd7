"""Tasks: specs (data only) and the registry."""

from .registry import expand, get, get_mixture, mixtures, names, register
from .spec import FAMILIES, HubSource, MixtureSpec, TaskSpec

__all__ = ["FAMILIES", "HubSource", "MixtureSpec", "TaskSpec", "expand", "get", "get_mixture", "mixtures", "names", "register"]
