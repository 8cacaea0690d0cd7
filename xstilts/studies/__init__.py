"""Studies: a named grid plus its analysis, rendered as one section of the report.

    xstilts study model-scale [--config FILE] [--models base large 7b 70b] [--dry-run] [key=value ...]

A study config is a grid config (``base``, ``models``, ``settings``, ``targets``, ``seeds``, see
:mod:`xstilts.grid`) plus a ``study:`` block with the study's options; ``configs/studies/<name>.yaml``
holds the real-scale config of each study (the default of ``--config``). Every cell is an ordinary
grid cell: phases are hashed and reused, and every cell is recorded in ``<workdir>/results.sqlite``
(through :func:`xstilts.grid.execute`, the executor grids use). The analysis reads the store (only the
study's own cells) and writes ``<workdir>/studies/<name>/section.json`` (+ ``section.md``,
``table.csv``, plots), which ``xstilts report`` appends to the report.

Studies are plug-ins: one module each under this package, defining a :class:`~xstilts.studies.base.Study`
(its options, cells and analysis) and registering it; :func:`names` discovers them with ``pkgutil``,
and the CLI lists them from it. Adding a study is one module here plus its config in
``configs/studies/``. The shared machinery lives in :mod:`xstilts.studies.base`, the statistics in
:mod:`xstilts.stats`. The built-in studies:

* ``model-scale`` (:mod:`.model_scale`): does the gap between intermediate-then-target and direct
  target training persist as models grow? Gap per model, target and language, with a t-interval over seeds.
* ``data-scale`` (:mod:`.data_scale`): English intermediate data fractions against multilingual
  intermediate sets; a saturation curve fitted to the gains, and the fraction beyond which gains are
  within seed noise.
* ``latency`` (:mod:`.latency`): zero-shot accuracy against inference latency (base vs large), with
  intermediate tasks picked by English dev accuracy; the regret of that choice; a Pareto plot.
* ``efficiency`` (:mod:`.efficiency`): time per epoch, examples/s, tokens/s and subword fertility of
  English vs non-English intermediate data at matched example counts (XNLI dev is parallel), and how
  much of the difference token counts explain.

Conventions shared by every study (and written into each section):

* A run's *zero-shot score* is the target's primary metric on its evaluation split, averaged
  unweighted over the evaluation languages other than English.
* A *gap* or *gain* is the setting's score minus the baseline's (``study.baseline``, default
  ``none``: direct target training), paired by target seed.
* Intervals are 95 % t-intervals over seeds (``mean ± t_{0.975, n-1} · sd / sqrt(n)``); a result
  whose interval contains zero is called *inconclusive*.

Example:
    >>> cfg = load_study("model-scale", models=["base", "large", "7b"])
    >>> print(dry_run(cfg))              # phases, PFLOPs, A100-hours, memory and 80 GB GPUs per model
    >>> run_study(cfg)                    # trains what is missing, records every cell
    >>> section = analyze(cfg)            # numbers, tables, conclusion
    >>> write_section(section, section_dir(cfg))
"""

from ..report.render import format_section, section_html, section_markdown
from .base import (CONFIG_DIR, Study, StudyConfig, StudyOptions, analyze, cell_scores, config_model,
                   default_config_path, dry_run, get, grid_cells, is_decoder_model, load_sections, load_study,
                   model_base, names, register, resolve_model, run_study, section_dir, study_cells, study_settings,
                   unregister, write_section)

__all__ = ["CONFIG_DIR", "Study", "StudyConfig", "StudyOptions", "analyze", "cell_scores", "config_model",
           "default_config_path", "dry_run", "format_section", "get", "grid_cells", "is_decoder_model",
           "load_sections", "load_study", "model_base", "names", "register", "resolve_model", "run_study",
           "section_dir", "section_html", "section_markdown", "study_cells", "study_settings", "unregister",
           "write_section"]
