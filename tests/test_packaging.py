"""Every package the code, the suite and the benchmarks import is one the project declares (or
one a declared package brings): `python -m tests` installs `.[test]` into a fresh venv, and an
import only a developer's machine happened to have stops the suite at collection there."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OWN = {"monitor", "tests", "bench", "conftest"}


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _declared() -> set[str]:
    """The project's requirements, its test and train extras, and what they require in turn
    (as installed here), by normalised distribution name."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [_name(r) for r in project["dependencies"]]
    for extra in ("test", "train"):
        todo += [_name(r) for r in project["optional-dependencies"][extra]]
    seen: set[str] = set()
    while todo:
        dist = todo.pop()
        if dist in seen or dist == "monitor":
            continue
        seen.add(dist)
        try:
            requires = metadata.requires(dist) or []
        except metadata.PackageNotFoundError:
            continue
        # with the extras a declared requirement asks for (celery[redis]): keep them all
        todo += [_name(r) for r in requires]
    return seen


def _unguarded_imports(path: Path) -> set[str]:
    """Top-level module names imported outside a try block (a guarded import is optional)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            for inner in node.body:
                guarded.update(id(n) for n in ast.walk(inner))
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def undeclared(files: list[Path], local: set[str], declared: set[str]) -> dict[str, list[str]]:
    """Module → the files importing it, for every unguarded import no declared package gives."""
    distributions = metadata.packages_distributions()
    missing: dict[str, list[str]] = {}
    for path in files:
        for module in _unguarded_imports(path) - local:
            if module in sys.stdlib_module_names or module == "__future__":
                continue
            dists = {_name(d) for d in distributions.get(module, [module])}
            if dists.isdisjoint(declared):
                missing.setdefault(module, []).append(path.name)
    return missing


def test_every_import_of_code_tests_and_benchmarks_is_declared() -> None:
    files = [
        p
        for folder in ("monitor", "tests", "bench")
        for p in (ROOT / folder).rglob("*.py")
        if "data" not in p.relative_to(ROOT).parts
    ]
    missing = undeclared(files, OWN | {p.stem for p in files}, _declared())
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_the_check_reports_an_undeclared_import(tmp_path: Path) -> None:
    """The check above can fail: with jsonschema left out of what is declared (as the test
    extra left it out), a file importing it is reported; a guarded import is not."""
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import yaml\nimport jsonschema\ntry:\n    import spacy\nexcept ImportError:\n    pass\n"
    )
    assert _unguarded_imports(probe) == {"yaml", "jsonschema"}
    declared = _declared()
    assert "jsonschema" in declared and "pyyaml" in declared
    assert undeclared([probe], set(), declared) == {}
    assert undeclared([probe], set(), declared - {"jsonschema"}) == {"jsonschema": ["probe.py"]}
