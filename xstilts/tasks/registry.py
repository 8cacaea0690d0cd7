"""The task registry: register, look up, list. One place, one dict; the built-in catalogue
(:mod:`xstilts.tasks.catalog`) is registered on the first lookup."""

from __future__ import annotations

import dataclasses
import difflib

from ..errors import ConfigError
from .spec import MixtureSpec, TaskSpec

_TASKS: dict[str, TaskSpec] = {}
_MIXTURES: dict[str, MixtureSpec] = {}


def register(spec: TaskSpec | MixtureSpec, *, replace: bool = False) -> TaskSpec | MixtureSpec:
    """Add a task or mixture; a duplicate name is an error unless ``replace``. Returns what was registered.

    A task without ``metrics`` (None) is registered with its family's default metric, the first of
    ``get_family(spec.family).metric_names(spec)``, so every registered task names its metrics. A task
    whose ``metrics`` name a metric unknown to :mod:`xstilts.metrics.registry`, or one its family does
    not compute (for its options), is a :class:`ConfigError`: its primary metric would otherwise never
    be found.
    """
    if not replace and (spec.name in _TASKS or spec.name in _MIXTURES):
        raise ValueError(f"task or mixture {spec.name!r} is already registered")
    if isinstance(spec, TaskSpec):
        spec = _with_metrics(spec)
    (_MIXTURES if isinstance(spec, MixtureSpec) else _TASKS)[spec.name] = spec
    return spec


def _with_metrics(spec: TaskSpec) -> TaskSpec:
    """``spec`` with explicit, checked metrics (the family's default when it sets none)."""
    from ..families import get_family
    from ..metrics.registry import is_registered

    computed = get_family(spec.family).metric_names(spec)
    allowed = (f"the {spec.family} family computes {', '.join(computed) or 'no metrics'} for it "
               f"(the first metric listed is its primary one)")
    if spec.metrics is None:
        if not computed:
            raise ConfigError(f"task {spec.name!r}: no metrics given and none by default; {allowed}")
        return dataclasses.replace(spec, metrics=(computed[0],))
    unknown = [m for m in spec.metrics if not is_registered(m)]
    if unknown:
        raise ConfigError(f"task {spec.name!r}: unknown metric {', '.join(repr(m) for m in unknown)} in metrics "
                          f"(not in xstilts.metrics.registry); {allowed}")
    uncomputed = [m for m in spec.metrics if m not in computed]
    if uncomputed or not spec.metrics:
        what = f"metric {', '.join(repr(m) for m in uncomputed)}" if uncomputed else "no metric"
        raise ConfigError(f"task {spec.name!r}: {what} in metrics; {allowed}")
    return spec


def _miss(kind: str, name: str, pool) -> ConfigError:
    close = difflib.get_close_matches(name, list(pool), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"unknown {kind} {name!r}{hint} (`xstilts tasks` lists them)")


def get(name: str) -> TaskSpec:
    """The task called ``name``; an unknown name raises with the closest names."""
    _load_catalog()
    try:
        return _TASKS[name]
    except KeyError:
        raise _miss("task", name, list(_TASKS) + list(_MIXTURES)) from None


def get_mixture(name: str) -> MixtureSpec | None:
    _load_catalog()
    return _MIXTURES.get(name)


def expand(name: str) -> list[str]:
    """Task names behind a task or mixture name."""
    _load_catalog()
    if name in _MIXTURES:
        return list(_MIXTURES[name].tasks)
    get(name)
    return [name]


def names() -> list[str]:
    _load_catalog()
    return sorted(_TASKS)


def mixtures() -> list[MixtureSpec]:
    _load_catalog()
    return [ _MIXTURES[k] for k in sorted(_MIXTURES)]


_loaded = False


def _load_catalog():
    global _loaded
    if not _loaded:
        _loaded = True
        from .catalog import REPLACE, SPECS

        for spec in SPECS:  # the built-in tasks
            register(spec, replace=spec.name in REPLACE)
