"""Task specifications: frozen records, data only.

A task says *what* the data is (family, languages, where each split's files
are, label set, the names of its metrics in :mod:`xstilts.metrics.registry`); the family module (``xstilts.families``) says *how*
it is tokenized, scored and decoded. Adding an XNLI-like task touches only the
catalog.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .. import families as _families
from ..families import FAMILIES  # noqa: F401  (re-exported; the list lives with the families)


HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


@dataclass(frozen=True)
class HubSource:
    """Where a task lives on the Hugging Face hub and how a row maps onto the family fields.

    Every catalogue mapping is data in the task catalogue; :func:`xstilts.data.load_from_hub`
    is the one interpreter. Only Parquet/JSON hub repositories (``datasets`` 4.x loads no scripts).

    Attributes:
        dataset: hub id, e.g. ``"facebook/xnli"``.
        config: config name template: ``{lang}``, ``{lang3}`` (ISO 639-3, as Tatoeba) or ``{config}``
            (the language's entry in ``configs``); None = the default config.
        configs: per-language values for ``{config}``, e.g. ``{"en": "English"}`` for UD.
        splits: our split name -> hub split name (``{lang}`` allowed).
        columns: family field -> how to read it from a row: a column name, a dotted path into a
            nested column (``"choices.text"``), a tuple of columns (read as a list), or a
            ``str.format`` template over the row's columns (``"{activity_label}: {ctx}"``).
            Class-label columns are read as their label names. Family fields not listed are
            read from the column of the same name.
        values: family field -> {hub value: our value} (e.g. SocialIQA's ``"1"`` -> 0,
            COPA's ``"cause"`` -> its question).
        languages: languages with a hub copy (None: all of the task's languages).
        row_filter: ``(column, {lang: prefix})``: keep rows whose column starts with the
            language's prefix (hub configs that mix languages, e.g. TyDiQA's ids).
        revision: hub revision to read; ``"refs/convert/parquet"`` (the hub's own Parquet export) for
            repositories whose main branch still holds a loading script, which ``datasets`` 4.x refuses.
        verified: the id, configs, splits and columns were checked against the hub's current files.
    """

    dataset: str
    config: str | None = None
    configs: dict[str, str] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=lambda: dict(HUB_SPLITS))
    columns: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    values: dict[str, dict] = field(default_factory=dict)
    languages: tuple[str, ...] | None = None
    row_filter: tuple[str, dict[str, str]] | None = None
    revision: str | None = None
    verified: bool = False

    def covers(self, split: str, lang: str) -> bool:
        """True if this copy has ``split`` in ``lang``."""
        return split in self.splits and (self.languages is None or lang in self.languages) and (
            "{config}" not in (self.config or "") or lang in self.configs)

    def __hash__(self):
        return hash((self.dataset, self.config))


@dataclass(frozen=True)
class TaskSpec:
    """One task.

    Attributes:
        name: registry name, e.g. ``"xnli"``.
        family: one of :data:`FAMILIES`; decides featurisation, head, decoding.
        languages: every language the task is evaluated in (ISO codes).
        files: split name -> path template relative to the data folder, or a
            tuple of alternative templates (first existing wins; ``.gz`` is
            tried too). ``{lang}`` is the language, ``{lang3}`` its ISO 639-3
            code (Tatoeba). A split missing for a language is absent on disk.
        format: reader name in :data:`xstilts.data.READERS` (``"jsonl"`` is the
            family-native JSON-lines layout).
        labels: label set (classification, tagging); empty for other families.
        metrics: names of :mod:`xstilts.metrics.registry` entries, each one the family computes for
            this task (checked when it is registered); the first is its primary metric
            (:attr:`primary_metric`). None (the default): the family's default metric, the first of
            its ``metric_names(spec)``, filled in by :func:`xstilts.tasks.register`.
        train_task: for a target evaluated zero-shot, the task whose English
            ``train`` split fine-tunes it (None: this task's own English train).
        train_lang: language of the training data (English in the paper).
        head: name of the output head; tasks with the same label space may share
            one (e.g. the NLI tasks of ANLI+). Defaults to ``name``.
        hub: the task's public copy on the Hugging Face hub (:class:`HubSource`), read
            by ``datasets.load_dataset`` when no data folder is given; None when
            there is none (the task then needs ``data_dir``).
        eval_split: split used for zero-shot evaluation.
        dev_split: split used for early stopping (English).
        options: family options, e.g. ``{"version_2": True}`` for span QA.
        version: bump when the task's behaviour changes; part of cache keys.
    """

    name: str
    family: str
    languages: tuple[str, ...] = ("en",)
    files: dict[str, str | tuple[str, ...]] = field(default_factory=dict)
    format: str = "jsonl"
    labels: tuple[str, ...] = ()
    metrics: tuple[str, ...] | None = None
    train_task: str | None = None
    train_lang: str = "en"
    head: str | None = None
    hub: HubSource | None = None
    eval_split: str = "test"
    dev_split: str = "dev"
    options: dict = field(default_factory=dict)
    description: str = ""
    version: int = 1

    def __post_init__(self):
        if self.family not in _families.FAMILIES:  # read at call time
            raise ValueError(f"task {self.name!r}: family {self.family!r} is not one of {_families.FAMILIES}")

    @property
    def primary_metric(self) -> str:
        """The one metric model selection, studies and reports read for this task."""
        if not self.metrics:
            raise ValueError(f"task {self.name!r}: no metrics; register it (xstilts.tasks.register) to get its "
                             f"family's default metric")
        return self.metrics[0]

    @property
    def head_name(self) -> str:
        return self.head or self.name

    def __hash__(self):  # dict fields make the default hash fail
        return hash(self.name)


@dataclass(frozen=True)
class MixtureSpec:
    """Several tasks trained together with a sampling rule.

    Attributes:
        name: registry name, e.g. ``"anli_plus"``.
        tasks: member task names.
        rule: ``proportional``, ``capped``, ``temperature`` or ``uniform``.
        cap: example-count cap for ``capped`` and ``temperature``.
        temperature: T in p ~ min(n, cap) ** (1 / T).
    """

    name: str
    tasks: tuple[str, ...]
    rule: str = "proportional"
    cap: int | None = None
    temperature: float = 1.0
