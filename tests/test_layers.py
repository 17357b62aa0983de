"""The layer rule: b2ner_common <- spark_jobs, ray_train <- b2ner_cli, one direction, lazy imports included."""

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import b2ner_common

FORBIDDEN = ("pyspark", "ray", "deepspeed")


def _all_modules() -> list[str]:
    names = ["b2ner_common"]
    for m in pkgutil.walk_packages(b2ner_common.__path__, prefix="b2ner_common."):
        names.append(m.name)
    return names


def test_layers_core_imports_no_engine():
    code = (
        "import importlib, sys\n"
        f"for name in {_all_modules()!r}:\n"
        "    importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"b2ner_common pulled in engine modules: {out.stdout.strip()}"


def test_layers_every_core_module_imports():
    for name in _all_modules():
        importlib.import_module(name)


# The layer rule holds in function bodies too: an AST walk sees every import, lazy ones included.
FORBIDDEN_ANYWHERE = ("pyspark", "ray", "deepspeed", "spark_jobs", "ray_train", "b2ner_cli")


def _imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def test_layers_core_never_imports_engines_or_cli_even_lazily():
    root = Path(b2ner_common.__file__).parent
    bad = [
        f"{p.relative_to(root.parent)}:{line}: {name}"
        for p in sorted(root.rglob("*.py"))
        for line, name in _imports(p)
        if name.split(".")[0] in FORBIDDEN_ANYWHERE
    ]
    assert not bad, "b2ner_common imports an engine or the CLI:\n" + "\n".join(bad)


def test_layers_engine_shells_never_import_the_cli():
    repo = Path(b2ner_common.__file__).parent.parent
    bad = [
        f"{p.relative_to(repo)}:{line}: {name}"
        for pkg in ("spark_jobs", "ray_train")
        for p in sorted((repo / pkg).rglob("*.py"))
        for line, name in _imports(p)
        if name.split(".")[0] == "b2ner_cli"
    ]
    assert not bad, "an engine shell imports the CLI:\n" + "\n".join(bad)


def test_layers_stage_table_targets_exist():
    """Every (stage, engine | family) entry names a module-level function that exists (read, not imported)."""
    from b2ner_cli.stages import STAGES
    from b2ner_common.models.base import FAMILIES

    repo = Path(b2ner_common.__file__).parent.parent
    for (stage, key), target in STAGES.items():
        module, _, name = target.partition(":")
        tree = ast.parse((repo / (module.replace(".", "/") + ".py")).read_text())
        defs = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert name in defs, f"({stage}, {key}) -> {target}: no such function"
        if stage == "train":
            assert key in FAMILIES, f"trainable family {key!r} has no predictor in models.base.FAMILIES"
