"""The layer rule: b2ner_common never imports pyspark, ray or deepspeed at import time."""

import importlib
import pkgutil
import subprocess
import sys

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
