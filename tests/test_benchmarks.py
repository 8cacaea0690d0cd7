"""Benchmark groups (xstilts.tasks.benchmarks) are data over the catalogue's own tasks."""

from __future__ import annotations

import pytest

from xstilts import tasks
from xstilts.tasks.benchmarks import xtreme_score
from xstilts.tasks import benchmarks as B


@pytest.mark.parametrize("bench", sorted(B.BENCHMARKS))
def test_every_task_of_a_benchmark_group_is_a_catalogue_task(bench):
    group = B.BENCHMARKS[bench]
    assert set(group["catalogue"]) == set(group["tasks"])  # every official task has its catalogue tasks
    for cat, members in group["categories"].items():
        assert set(members) <= set(group["tasks"]), cat
    registered = set(tasks.names())
    for official, catalogue in group["catalogue"].items():
        assert catalogue, official
        assert set(catalogue) <= registered, (bench, official, catalogue)


@pytest.mark.parametrize("bench", sorted(B.BENCHMARKS))
def test_each_catalogue_task_scores_as_its_official_task(bench):
    """xtreme_score resolves each catalogue name (and each alias) to the official name it reports."""
    for official, catalogue in B.BENCHMARKS[bench]["catalogue"].items():
        for name in catalogue:
            assert list(xtreme_score({name: {"en": 0.5}}, benchmark=bench)["tasks"]) == [official], name
    for alias, official in B.TASK_ALIASES.items():
        assert official in B.BENCHMARKS["xtreme"]["tasks"] + B.BENCHMARKS["xtreme-r"]["tasks"]
        got = xtreme_score({alias: {"en": 0.5}}, benchmark=bench)
        assert list(got["tasks"]) == [official]
        assert (official in got["unscored_tasks"]) == (official not in B.BENCHMARKS[bench]["tasks"])


def test_xtreme_r_names_the_catalogue_xtreme_r_tasks():
    """XTREME-R's UD-POS / PAN-X are the catalogue's udpos_r / panx_r (its wider language lists)."""
    cat = B.BENCHMARKS["xtreme-r"]["catalogue"]
    assert cat["udpos"][0] == "udpos_r" and cat["panx"][0] == "panx_r" and cat["mewsli-x"] == ("mewsli_x",)
    assert set(tasks.get("udpos_r").languages) > set(tasks.get("udpos").languages)
    # under XTREME the _r tasks are not benchmark tasks
    assert xtreme_score({"udpos_r": {"en": 0.5}})["unscored_tasks"] == ["udpos_r"]


def test_benchmarks_import_nothing_of_xstilts_but_its_error_type():
    """The metric definitions and the task registry never depend on the benchmark groups (no cycle)."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(B))
    internal = [(n.module, n.level) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert internal == [("errors", 2)]
    external = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    external |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level}
    assert external <= {"__future__", "collections", "math", "typing"}
