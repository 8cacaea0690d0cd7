"""The metric registry (xstilts.metrics.registry) and the metrics a task declares."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace

import pytest

from xstilts import tasks
from xstilts.errors import ConfigError
from xstilts.families import get_family
from xstilts.metrics import accuracy
from xstilts.metrics import registry as R
from xstilts.metrics.classification import accuracy_per_example
from xstilts.tasks import FAMILIES, TaskSpec, register

# Every catalogue task's metrics as they were before the registry (they enter the phase hash: never change).
CATALOGUE_METRICS = {
    'anli_r1': ('accuracy',), 'anli_r2': ('accuracy',), 'anli_r3': ('accuracy',), 'bucc2018': ('f1',),
    'ccg': ('accuracy',), 'cldr_category': ('accuracy',), 'cldr_is_a': ('accuracy',),
    'cldr_same_category': ('accuracy',), 'commonsenseqa': ('accuracy',), 'copa': ('accuracy',),
    'cosmosqa': ('accuracy',), 'hellaswag': ('accuracy',), 'lareqa': ('map@20',), 'mewsli_x': ('map@20',),
    'mlqa': ('f1', 'exact_match'), 'mnli': ('accuracy',), 'panx': ('f1',), 'panx_r': ('f1',),
    'pawsx': ('accuracy',), 'qqp': ('accuracy',), 'siqa': ('accuracy',), 'snli': ('accuracy',),
    'squad': ('f1', 'exact_match'), 'squad_v2': ('f1', 'exact'), 'tatoeba': ('accuracy',),
    'tydiqa': ('f1', 'exact_match'), 'udpos': ('f1', 'accuracy'), 'udpos_ewt': ('f1', 'accuracy'),
    'udpos_gsd': ('f1', 'accuracy'), 'udpos_imst': ('f1', 'accuracy'), 'udpos_pud': ('f1', 'accuracy'),
    'udpos_r': ('f1', 'accuracy'), 'udpos_tdt': ('f1', 'accuracy'), 'xcopa': ('accuracy',), 'xnli': ('accuracy',),
    'xquad': ('f1', 'exact_match'),
}

# every option that changes what a family computes, in each of its values
OPTION_VARIANTS = [{}, {"version_2": True}, {"mlqa_normalisation": True}, {"scheme": "iob2"},
                   *({"kind": k} for k in ("aligned", "bucc", "lareqa", "mewsli"))]


def test_catalogue_metrics_are_unchanged():
    from xstilts.tasks.catalog import SPECS

    catalogue = {s.name for s in SPECS if isinstance(s, TaskSpec)}  # tests may register tasks of their own
    assert {n: tasks.get(n).metrics for n in catalogue} == CATALOGUE_METRICS


@pytest.mark.parametrize("name", sorted(CATALOGUE_METRICS))
def test_catalogue_metrics_are_registered_and_computed_by_the_family(name):
    spec = tasks.get(name)
    computed = get_family(spec.family).metric_names(spec)
    for metric in spec.metrics:
        assert R.is_registered(metric) and metric in computed, (name, metric)
    assert R.get_metric(spec.primary_metric).is_score
    assert spec.primary_metric == spec.metrics[0]


def test_every_metric_a_family_can_compute_is_registered():
    seen = set()
    for family in FAMILIES:
        for options in OPTION_VARIANTS:
            names = get_family(family).metric_names(TaskSpec(name="probe", family=family, options=options))
            seen |= set(names)
            assert [m for m in names if not R.is_registered(m)] == [], (family, options)
    assert seen == set(R.metric_names())  # and the registry names nothing no family computes


def test_registry_entries_point_at_real_functions():
    for name in R.metric_names():
        metric = R.get_metric(name)
        assert metric.name == name and metric.computed_by and metric.description
        for ref in metric.computed_by:
            assert callable(R.resolve(ref)), ref
    assert R.get_metric("accuracy").per_example_function() is accuracy_per_example
    preds, labels = [1, 0, 2, 2], [1, 1, 2, 0]
    assert sum(accuracy_per_example(preds, labels)) / 4 == accuracy(preds, labels)
    assert R.get_metric("total").higher_is_better is None and R.get_metric("f1").higher_is_better is True
    with pytest.raises(ConfigError, match="unknown metric 'f2'; did you mean 'f1'"):
        R.get_metric("f2")
    with pytest.raises(ValueError, match="already registered"):
        R.register_metric(R.get_metric("f1"))


@pytest.mark.parametrize("family, options, want", [
    ("classification", {}, ("accuracy",)),
    ("multiple_choice", {}, ("accuracy",)),
    ("tagging", {}, ("accuracy",)),
    ("tagging", {"scheme": "iob2"}, ("f1",)),
    ("span_qa", {}, ("exact_match",)),
    ("span_qa", {"version_2": True}, ("exact",)),
    ("retrieval", {"kind": "lareqa"}, ("map@20",)),
    ("retrieval", {}, ("accuracy",)),
])
def test_a_task_without_metrics_gets_its_family_default(family, options, want):
    spec = TaskSpec(name=f"default_{family}_{len(options)}", family=family, options=options, labels=("a", "b"))
    assert spec.metrics is None
    got = register(spec, replace=True)
    assert got.metrics == want == (get_family(family).metric_names(spec)[0],)
    assert tasks.get(spec.name) is got and got.primary_metric == want[0]


def test_an_unregistered_task_without_metrics_has_no_primary_metric():
    with pytest.raises(ValueError, match="task 'loose': no metrics; register it"):
        TaskSpec(name="loose", family="classification").primary_metric


def test_unknown_and_uncomputed_metrics_are_config_errors_naming_the_task_and_the_allowed_ones():
    spec = TaskSpec(name="bad_metric", family="tagging", options={"scheme": "iob2"}, labels=("O",))
    with pytest.raises(ConfigError, match=r"task 'bad_metric': unknown metric 'bleu' in metrics .*"
                                          r"the tagging family computes f1, precision, recall for it"):
        register(dataclasses.replace(spec, metrics=("f1", "bleu")))
    with pytest.raises(ConfigError, match=r"task 'bad_metric': metric 'accuracy' in metrics; "
                                          r"the tagging family computes f1, precision, recall"):
        register(dataclasses.replace(spec, metrics=("accuracy",)))
    with pytest.raises(ConfigError, match=r"task 'mlm_probe': no metrics given and none by default"):
        register(TaskSpec(name="mlm_probe", family="mlm"))
    with pytest.raises(ConfigError, match="unknown task"):
        tasks.get("bad_metric")


def test_config_tasks_keep_their_metrics():
    from xstilts.config import TaskDef
    from xstilts.pipeline import register_config_tasks

    defs = [TaskDef(name="cfg_qa", family="span_qa", files={"train": "x"}, metrics=["f1", "exact_match"]),
            TaskDef(name="cfg_cls", family="classification", files={"train": "x"}, labels=["a", "b"])]
    register_config_tasks(SimpleNamespace(tasks=defs))
    assert tasks.get("cfg_qa").metrics == ("f1", "exact_match")
    assert tasks.get("cfg_cls").metrics == ("accuracy",)  # the config's default, as before
