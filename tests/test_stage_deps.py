"""Deps are the whole truth: each stage in dvc.yaml depends on all the code its command runs.

scripts/stage_deps.py derives a stage's code deps from the import closure of its script inside
src/janus (plus the prompt templates the code renders); these tests run its check on the real
dvc.yaml and show that the check and the rewrite catch what a hand-kept list would miss.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest
import yaml

from tests.conftest import REPO_ROOT

SCRIPT = REPO_ROOT / "scripts" / "stage_deps.py"


@pytest.fixture(scope="module")
def stage_deps():
    spec = importlib.util.spec_from_file_location("stage_deps", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["stage_deps"] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


def _check(dvc_yaml) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--dvc-yaml", str(dvc_yaml)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )


def test_every_stage_depends_on_the_code_it_runs():
    result = _check(REPO_ROOT / "dvc.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_config_core_and_io_are_deps_of_every_stage_that_imports_them():
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        script = next(t for t in body["cmd"].split() if t.endswith(".py"))
        source = (REPO_ROOT / script).read_text()
        deps = body["deps"]
        # every stage script loads its params sections through the core
        assert "src/janus/config/common.py" in deps, name
        if "janus.io" in source:
            assert "src/janus/io.py" in deps, name


def _stages_depending_on(dep: str) -> set[str]:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    return {name for name, stage in stages.items() if dep in stage.get("do", stage)["deps"]}


def test_a_section_schema_is_a_dep_only_of_the_stages_that_read_it():
    # editing the judge's params schema re-judges; it never retrains nor regenerates
    assert _stages_depending_on("src/janus/config/judge.py") == {"judge"}
    assert _stages_depending_on("src/janus/config/train.py").isdisjoint({"judge", "report"})
    assert "src/janus/config/params.py" not in {  # the whole schema is for tests and the CLI
        dep
        for stage in yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"].values()
        for dep in stage.get("do", stage)["deps"]
    }
    assert not _stages_depending_on("src/janus/config")  # no stage reads every section


def test_only_the_endpoint_rows_of_inference_run_the_http_client():
    """An edit to the HTTP client must not rerun days of local-model generation (issue 17)."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    for name in ("infer", "infer_bon", "infer_hub"):
        deps = stages[name]["do"]["deps"]
        assert not [dep for dep in deps if dep.startswith("src/janus/llm")], name
        assert "${environment.lock_file}" in deps, name  # the installed environment's lock
    client = "src/janus/llm/openai_backend.py"  # listed itself, or inside its folder's dep
    assert any(client.startswith(dep) for dep in stages["infer_api"]["do"]["deps"] if dep.startswith("src/"))


def _without(text: str, stage: str, dep: str) -> str:
    """dvc.yaml text with one dep line of one stage removed."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{stage}:")
    index = next(i for i in range(start, len(lines)) if lines[i].strip() == f"- {dep}")
    del lines[index]
    return "".join(lines)


def test_a_missing_file_fails_the_check_and_is_named(tmp_path):
    text = (REPO_ROOT / "dvc.yaml").read_text()
    broken = tmp_path / "dvc.yaml"
    broken.write_text(
        _without(_without(text, "filter", "src/janus/io.py"), "judge", "src/janus/config/judge.py")
    )
    result = _check(broken)
    assert result.returncode == 1
    assert "filter: missing dep src/janus/io.py" in result.stdout
    assert "judge: missing dep src/janus/config/judge.py" in result.stdout
    assert "bench:" not in result.stdout  # only the stages that lost a dep


def test_a_stale_code_dep_fails_the_check(tmp_path):
    text = (REPO_ROOT / "dvc.yaml").read_text()
    stale = tmp_path / "dvc.yaml"
    # the filter stage never imports janus.tracking
    stale.write_text(
        text.replace(
            "      - stages/filter.py\n",
            "      - stages/filter.py\n      - src/janus/tracking.py\n",
            1,
        )
    )
    result = _check(stale)
    assert result.returncode == 1
    assert "filter: stale dep src/janus/tracking.py" in result.stdout


def test_write_restores_deps_and_keeps_the_rest_of_the_file(tmp_path, stage_deps):
    original = (REPO_ROOT / "dvc.yaml").read_text()
    damaged = _without(_without(original, "bench", "src/janus/io.py"), "report", "stages/report.py")
    assert damaged != original
    copy = tmp_path / "dvc.yaml"
    copy.write_text(damaged)
    assert sorted(stage_deps.write(copy)) == ["bench", "report"]
    assert copy.read_text() == original  # comments, cmd folding, data deps: all kept
    assert stage_deps.write(copy) == []  # idempotent


def _package(root, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_closure_follows_lazy_and_relative_imports_and_prompt_templates(tmp_path, stage_deps):
    _package(
        tmp_path,
        {
            "stages/run.py": """
                from janus.work import main
                import janus.extra.tool
            """,
            "src/janus/__init__.py": "VERSION = 1\n",
            "src/janus/work.py": """
                from typing import TYPE_CHECKING
                from janus.prompts import render_messages
                if TYPE_CHECKING:
                    from janus import typing_only
                def main():
                    from .helper import helper  # runs only when called: still code it runs
                    return render_messages("ask", x=1)
            """,
            "src/janus/helper.py": "def helper(): ...\n",
            "src/janus/typing_only.py": "X = 1\n",
            "src/janus/unused.py": "X = 1\n",
            "src/janus/extra/__init__.py": '"""Only a docstring: runs nothing, not a dep."""\n',
            "src/janus/extra/tool.py": "from . import other\n",
            "src/janus/extra/other.py": "X = 1\n",
            "src/janus/prompts/__init__.py": "def render_messages(name, **v): ...\n",
            "src/janus/prompts/ask.user.j2": "{{ x }}",
            "src/janus/prompts/ask.system.j2": "sys",
            "src/janus/prompts/other.user.j2": "unused",
        },
    )
    files = stage_deps.code_files([tmp_path / "stages/run.py"], tmp_path)
    relative = {path.relative_to(tmp_path).as_posix() for path in files}
    assert relative == {
        "stages/run.py",
        "src/janus/__init__.py",
        "src/janus/work.py",
        "src/janus/helper.py",
        "src/janus/extra/tool.py",
        "src/janus/extra/other.py",
        "src/janus/prompts/__init__.py",
        "src/janus/prompts/ask.user.j2",
        "src/janus/prompts/ask.system.j2",
    }
    # a package all of whose files run is one directory dep
    assert stage_deps.collapse(files, tmp_path) == [
        "stages/run.py",
        "src/janus/__init__.py",
        "src/janus/helper.py",
        "src/janus/work.py",
        "src/janus/extra",
        "src/janus/prompts/__init__.py",
        "src/janus/prompts/ask.system.j2",
        "src/janus/prompts/ask.user.j2",
    ]
    # a template chosen at run time: the whole prompts directory
    (tmp_path / "src/janus/work.py").write_text(
        "from janus import prompts\ndef main(name):\n    return prompts.render_messages(name)\n"
    )
    files = stage_deps.code_files([tmp_path / "stages/run.py"], tmp_path)
    assert tmp_path / "src/janus/prompts/other.user.j2" in files
