"""Each DVC stage's code deps, derived from the code its command runs (never kept by hand).

For every stage in dvc.yaml, the script(s) its `cmd` runs (`python stages/x.py ...`) are parsed
and every `import janus.x` / `from janus.x import y` (relative ones too, and imports inside
functions, which run as well; not those under `if TYPE_CHECKING:`) is followed to a fixed point
inside src/janus. A module's deps are its file and the `__init__.py` of every package above it
(importing `janus.a.b` runs `janus/__init__.py` and `janus/a/__init__.py` first; an empty one,
or one that is only a docstring, runs nothing and is left out until it has code). Package data
counts too: a prompt template named in a call of `janus.prompts.render*`
(`render_messages("judge_absolute", ...)`) adds `src/janus/prompts/judge_absolute.*.j2`, and a
call whose template name is not a literal adds the whole prompts directory. A directory all of
whose files are needed is listed as the directory.

    python scripts/stage_deps.py --check   # exit 1, listing each stage's missing or stale code deps
    python scripts/stage_deps.py --write   # rewrite the code part of every stage's deps in dvc.yaml

`--write` keeps every other dep (data, checkpoints, `${item.path}`) in its place after the code
deps, and everything else in dvc.yaml (comments included: ruamel.yaml round-trips the file).
"""

from __future__ import annotations

import argparse
import ast
import shlex
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "janus"
PROMPTS_MODULE = "janus.prompts"
PROMPT_FUNCTIONS = {"render", "render_messages", "template_paths"}  # take a template name first
# Modules that run in a stage but cannot change its outputs, so editing them reruns nothing.
# Keep this short, and say why for each.
NOT_OUTPUT_SHAPING = {
    # MLflow logging of training runs: writes to mlflow.db / mlartifacts, nothing DVC tracks.
    "janus.tracking": "MLflow logging only",
    # Its params section (MLflow on/off, URI, experiment): read by the same logging only.
    "janus.config.tracking": "MLflow logging settings only",
    # Checks a stage runs before it starts (served model, key, GPUs): it stops a stage or lets
    # it run, and writes nothing. A package here covers its modules.
    "janus.preflight": "checks before a stage starts",
}


def not_output_shaping(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in NOT_OUTPUT_SHAPING)
CODE_ROOTS = ("src/", "stages/", "scripts/")  # deps under these are code deps (derived here)


@dataclass
class ModuleInfo:
    imports: set[str] = field(default_factory=set)
    templates: set[str] = field(default_factory=set)  # prompt template names used
    any_template: bool = False  # a template chosen at run time: the whole prompts dir


class _Scanner(ast.NodeVisitor):
    """Imports of janus modules and prompt template names in one file."""

    def __init__(self, module: str | None, is_package: bool, src: Path) -> None:
        self.module = module
        self.is_package = is_package
        self.src = src
        self.info = ModuleInfo()
        self.prompt_functions: set[str] = set()  # local names bound to janus.prompts.render*
        self.prompt_modules: set[str] = set()  # dotted local names bound to janus.prompts

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        name = test.id if isinstance(test, ast.Name) else getattr(test, "attr", None)
        if name == "TYPE_CHECKING":  # never runs: only the else branch does
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def _add(self, dotted: str) -> None:
        parts = dotted.split(".")
        for end in range(1, len(parts) + 1):
            self.info.imports.add(".".join(parts[:end]))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name == PACKAGE or alias.name.startswith(PACKAGE + "."):
                self._add(alias.name)
                if alias.name == PROMPTS_MODULE:
                    self.prompt_modules.add(alias.asname or PROMPTS_MODULE)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            if self.module is None:
                return  # a relative import in a script: not ours
            package = self.module.split(".")
            if not self.is_package:
                package = package[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        if base != PACKAGE and not base.startswith(PACKAGE + "."):
            return
        self._add(base)
        for alias in node.names:
            dotted = f"{base}.{alias.name}"
            if module_path(dotted, self.src) is not None:  # a submodule, not a name in base
                self._add(dotted)
                if dotted == PROMPTS_MODULE:
                    self.prompt_modules.add(alias.asname or alias.name)
            elif base == PROMPTS_MODULE and alias.name in PROMPT_FUNCTIONS:
                self.prompt_functions.add(alias.asname or alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        is_prompt_call = (isinstance(func, ast.Name) and func.id in self.prompt_functions) or (
            isinstance(func, ast.Attribute)
            and func.attr in PROMPT_FUNCTIONS
            and ast.unparse(func.value) in self.prompt_modules
        )
        if is_prompt_call:
            first = node.args[0] if node.args else None
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                self.info.templates.add(first.value)
            else:
                self.info.any_template = True
        self.generic_visit(node)


def module_path(dotted: str, src: Path) -> Path | None:
    base = src.joinpath(*dotted.split("."))
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def runs_code(path: Path) -> bool:
    """False for an empty file or one that is only a docstring (a package's __init__.py)."""
    body = ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body
    docstring = (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    return len(body) > (1 if docstring else 0)


def scan(path: Path, module: str | None, src: Path) -> ModuleInfo:
    scanner = _Scanner(module, path.name == "__init__.py", src)
    scanner.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    if module == PROMPTS_MODULE:  # its own render() calls pass names through
        scanner.info.any_template = False
    return scanner.info


def code_files(scripts: Iterable[Path], root: Path = REPO) -> set[Path]:
    """Every file the scripts run or read inside src/janus (absolute paths)."""
    src = root / "src"
    prompts_dir = src.joinpath(*PROMPTS_MODULE.split("."))
    files: set[Path] = set()
    pending: list[str] = []
    templates: set[str] = set()
    any_template = False
    for script in scripts:
        files.add(script)
        info = scan(script, None, src)
        pending += sorted(info.imports)
        templates |= info.templates
        any_template |= info.any_template
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen or not_output_shaping(module):
            continue
        seen.add(module)
        path = module_path(module, src)
        if path is None:
            raise SystemExit(f"stage_deps: {module} is imported but no file provides it")
        if runs_code(path):  # an empty __init__.py runs nothing (and DVC warns on empty deps)
            files.add(path)
        info = scan(path, module, src)
        pending += sorted(info.imports - seen)
        templates |= info.templates
        any_template |= info.any_template
    if any_template:
        files |= {path for path in prompts_dir.glob("*") if path.is_file() and _is_source(path)}
    else:
        for name in sorted(templates):
            found = sorted(prompts_dir.glob(f"{name}.*.j2"))
            if not found:
                raise SystemExit(
                    f"stage_deps: prompt template {name!r} has no file in {prompts_dir}"
                )
            files.update(found)
    return files


def _is_source(path: Path) -> bool:
    return "__pycache__" not in path.parts and path.suffix != ".pyc"


def _all_files(directory: Path) -> set[Path]:
    """The files a directory dep would stand for (empty ones and docstring-only modules run
    nothing)."""
    return {
        path
        for path in directory.rglob("*")
        if path.is_file()
        and _is_source(path)
        and path.stat().st_size
        and (path.suffix != ".py" or runs_code(path))
    }


def collapse(files: set[Path], root: Path = REPO) -> list[str]:
    """Repo-relative deps: a directory of src/janus whose files are all needed is one entry."""

    def walk(directory: Path) -> list[Path]:
        if _all_files(directory) <= files:
            return [directory]
        entries = [path for path in sorted(directory.iterdir()) if path.is_file() and path in files]
        for sub in sorted(path for path in directory.iterdir() if path.is_dir()):
            if sub.name != "__pycache__" and any(sub in f.parents for f in files):
                entries += walk(sub)
        return entries

    package = root / "src" / PACKAGE
    inside = {f for f in files if package in f.parents}
    outside = sorted(files - inside)
    collapsed = walk(package) if inside else []
    return [path.relative_to(root).as_posix() for path in [*outside, *collapsed]]


# ---------------------------------------------------------------------------------------------
# dvc.yaml
# ---------------------------------------------------------------------------------------------


def _commands(body: dict) -> list[str]:
    cmd = body.get("cmd", [])
    return [cmd] if isinstance(cmd, str) else list(cmd)


def stage_scripts(body: dict, root: Path = REPO) -> list[Path]:
    """The Python files a stage's cmd runs (`python x.py`, `python -m janus.x`)."""
    scripts = []
    for command in _commands(body):
        tokens = shlex.split(command)
        for index, token in enumerate(tokens):
            if token.endswith(".py") and (root / token).is_file():
                scripts.append(root / token)
            elif token == "-m" and index + 1 < len(tokens):
                path = module_path(tokens[index + 1], root / "src")
                if path is not None:
                    scripts.append(path)
    return scripts


def _dep_name(dep) -> str:
    return dep if isinstance(dep, str) else next(iter(dep))


def is_code_dep(name: str) -> bool:
    return name.startswith(CODE_ROOTS) and "${" not in name


def stage_bodies(pipeline: dict) -> dict[str, dict]:
    """Stage name -> the mapping with its cmd and deps (`do:` for foreach stages)."""
    return {name: stage.get("do", stage) for name, stage in pipeline.get("stages", {}).items()}


@dataclass
class StageReport:
    missing: list[str]  # needed code that no dep covers
    stale: list[str]  # code deps that cover nothing the stage runs


def check(pipeline: dict, root: Path = REPO) -> dict[str, StageReport]:
    reports = {}
    for name, body in stage_bodies(pipeline).items():
        scripts = stage_scripts(body, root)
        if not scripts:
            continue
        needed = {path.relative_to(root).as_posix() for path in code_files(scripts, root)}
        listed = [_dep_name(dep) for dep in body.get("deps", []) or []]
        code = [dep.rstrip("/") for dep in listed if is_code_dep(dep)]

        def covers(dep: str, file: str) -> bool:
            return file == dep or file.startswith(dep + "/")

        missing = sorted(f for f in needed if not any(covers(dep, f) for dep in code))
        stale = [dep for dep in code if not any(covers(dep, f) for f in needed)]
        if missing or stale:
            reports[name] = StageReport(missing, stale)
    return reports


def derived_deps(body: dict, root: Path = REPO) -> list | None:
    """The stage's deps with the code part derived; None for stages that run no Python file."""
    scripts = stage_scripts(body, root)
    if not scripts:
        return None
    code = collapse(code_files(scripts, root), root)
    scripts_first = [p.relative_to(root).as_posix() for p in scripts]
    code = list(dict.fromkeys([*scripts_first, *code]))
    others = [dep for dep in body.get("deps", []) or [] if not is_code_dep(_dep_name(dep))]
    return [*code, *others]


def _yaml():
    from ruamel.yaml import YAML  # DVC's own YAML library, so it is installed with DVC

    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)  # dvc.yaml's layout
    return yaml


def write(dvc_yaml: Path, root: Path = REPO) -> list[str]:
    """Rewrite the deps lists in place; returns the names of the stages whose deps changed."""
    from ruamel.yaml.comments import CommentedSeq

    yaml = _yaml()
    pipeline = yaml.load(dvc_yaml.read_text(encoding="utf-8"))
    changed = []
    for name, body in stage_bodies(pipeline).items():
        deps = derived_deps(body, root)
        old = body.get("deps")
        if deps is None or (old is not None and list(old) == deps):
            continue
        if isinstance(old, CommentedSeq):
            # Replace the items in place, so comments attached to the list itself stay.
            old.clear()
            old.extend(deps)
        else:
            body["deps"] = deps
        changed.append(name)
    if changed:
        from io import StringIO

        buffer = StringIO()
        yaml.dump(pipeline, buffer)
        dvc_yaml.write_text(buffer.getvalue(), encoding="utf-8")
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--check", action="store_true", help="exit 1 when a stage misses code it runs"
    )
    mode.add_argument("--write", action="store_true", help="rewrite the code deps in dvc.yaml")
    parser.add_argument("--dvc-yaml", type=Path, default=REPO / "dvc.yaml")
    args = parser.parse_args(argv)
    if args.write:
        changed = write(args.dvc_yaml)
        print(f"{args.dvc_yaml}: rewrote the deps of {len(changed)} stage(s) {changed}")
        return 0
    reports = check(_yaml().load(args.dvc_yaml.read_text(encoding="utf-8")))
    for name, report in reports.items():
        for path in report.missing:
            print(f"{name}: missing dep {path} (the stage runs it)")
        for path in report.stale:
            print(f"{name}: stale dep {path} (the stage runs nothing under it)")
    if reports:
        print(
            f"run `python scripts/stage_deps.py --write` to derive them ({len(reports)} stage(s))"
        )
        return 1
    print(f"{args.dvc_yaml}: every stage depends on all the code it runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
