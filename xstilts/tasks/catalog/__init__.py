"""Built-in tasks as data: each module lists its specs in ``SPECS``; :mod:`xstilts.tasks.registry`
registers :data:`SPECS` on first lookup (importing the catalogue registers nothing, so it never
imports the registry)."""

from . import demo, intermediate, xtreme, xtreme_r

SPECS = [*demo.SPECS, *intermediate.SPECS, *xtreme.SPECS, *xtreme_r.SPECS]
# the quickstart demo tasks replace a task registered earlier under the same name
REPLACE = frozenset(s.name for s in demo.SPECS)
