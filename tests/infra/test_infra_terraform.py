"""Structure checks of infra/terraform: a stand-in for `terraform validate`, which needs provider downloads.

Every .tf file is parsed with python-hcl2; the checks then work on the parsed blocks (variables, outputs,
module calls, required providers) and on the references in the raw text (var., local., module.X.Y).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import hcl2
import pytest
import yaml

from b2ner_common.config import load_config

ROOT = Path(__file__).resolve().parents[2]
TF_ROOT = ROOT / "infra" / "terraform"
TF_FILES = sorted(TF_ROOT.rglob("*.tf"))
META_ARGS = {"source", "version", "providers", "depends_on", "count", "for_each"}


def _unquote(value):
    """python-hcl2 keeps string quotes ('"x"'); strip them from plain literals."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _blocks(parsed: dict, kind: str) -> dict[str, dict]:
    """Labelled blocks of one kind (variable, output, module, ...) as {label: body}."""
    out: dict[str, dict] = {}
    for entry in parsed.get(kind, []):
        for label, body in entry.items():
            out[_unquote(label)] = body
    return out


def _module_dirs() -> list[Path]:
    return sorted({f.parent for f in TF_FILES})


@cache
def _load(f: Path) -> dict:
    with f.open(encoding="utf-8") as fh:
        return hcl2.load(fh)


@cache
def _parse_dir(d: Path) -> dict[str, dict]:
    """All blocks of a module directory merged: {"variable": {...}, "output": {...}, "module": {...}, ...}."""
    merged: dict[str, dict] = {"variable": {}, "output": {}, "module": {}, "locals": {}, "resource": {}}
    merged["terraform"] = {}
    for f in sorted(d.glob("*.tf")):
        parsed = _load(f)
        for kind in ("variable", "output", "module"):
            merged[kind].update(_blocks(parsed, kind))
        for block in parsed.get("locals", []):
            merged["locals"].update({k: v for k, v in block.items() if k != "__is_block__"})
        for block in parsed.get("resource", []):
            merged["resource"].update({_unquote(k): v for k, v in block.items()})
        for block in parsed.get("terraform", []):
            merged["terraform"].update(block)
    return merged


def _text(d: Path) -> str:
    return "\n".join(f.read_text(encoding="utf-8") for f in sorted(d.glob("*.tf")))


def _rel(p: Path) -> str:
    return str(p.relative_to(ROOT))


def test_infra_layout_has_modules_and_an_example_root():
    modules = {p.name for p in (TF_ROOT / "modules").iterdir() if p.is_dir()}
    assert {"storage", "spark_emr_serverless", "eks_gpu", "ray_kuberay"} <= modules
    assert (TF_ROOT / "examples" / "aws" / "main.tf").is_file()
    for d in _module_dirs():
        names = {f.name for f in d.glob("*.tf")}
        assert {"variables.tf", "outputs.tf", "versions.tf"} <= names, f"{_rel(d)} lacks {names}"


@pytest.mark.parametrize("tf_file", TF_FILES, ids=_rel)
def test_infra_every_tf_file_parses(tf_file: Path):
    parsed = _load(tf_file)
    assert parsed, f"{_rel(tf_file)} is empty"


@pytest.mark.parametrize("module_dir", _module_dirs(), ids=_rel)
def test_infra_variables_and_outputs_documented(module_dir: Path):
    parsed = _parse_dir(module_dir)
    assert parsed["variable"], f"{_rel(module_dir)} declares no variables"
    assert parsed["output"], f"{_rel(module_dir)} declares no outputs"
    for name, body in parsed["variable"].items():
        desc = _unquote(body.get("description", ""))
        assert isinstance(desc, str) and len(desc) >= 15, (
            f"{_rel(module_dir)}: variable {name} needs a description"
        )
        assert "type" in body, f"{_rel(module_dir)}: variable {name} needs a type"
    for name, body in parsed["output"].items():
        desc = _unquote(body.get("description", ""))
        assert isinstance(desc, str) and len(desc) >= 10, (
            f"{_rel(module_dir)}: output {name} needs a description"
        )
        assert "value" in body, f"{_rel(module_dir)}: output {name} has no value"


@pytest.mark.parametrize("module_dir", _module_dirs(), ids=_rel)
def test_infra_providers_pinned(module_dir: Path):
    parsed = _parse_dir(module_dir)
    tf = parsed["terraform"]
    assert _unquote(tf.get("required_version", "")).startswith(">="), (
        f"{_rel(module_dir)}: pin required_version"
    )
    required: dict[str, dict] = {}
    for block in tf.get("required_providers", []):
        required.update({k: v for k, v in block.items() if k != "__is_block__"})
    for name, spec in required.items():
        assert _unquote(spec.get("source", "")).startswith("hashicorp/"), f"{name}: source not pinned"
        version = _unquote(spec.get("version", ""))
        assert re.match(r"^(~>|>=|=)\s*\d+\.\d+", version), (
            f"{_rel(module_dir)}: provider {name} version {version!r}"
        )
    # Every provider whose resources or data sources appear here is declared (terraform_data is built in).
    used = set(re.findall(r'^\s*(?:resource|data)\s+"([a-z0-9]+)_', _text(module_dir), flags=re.M)) - {
        "terraform"
    }
    assert used <= set(required), (
        f"{_rel(module_dir)}: providers {used - set(required)} not in required_providers"
    )


def _module_calls() -> list[tuple[Path, str, dict]]:
    calls = []
    for d in _module_dirs():
        for name, body in _parse_dir(d)["module"].items():
            calls.append((d, name, body))
    return calls


@pytest.mark.parametrize("call", _module_calls(), ids=lambda c: f"{_rel(c[0])}:{c[1]}")
def test_infra_module_calls_match_module_variables(call):
    caller, name, body = call
    source = _unquote(body["source"])
    assert source.startswith("./") or source.startswith("../"), f"module {name}: only local modules are used"
    target = (caller / source).resolve()
    assert target.is_dir() and list(target.glob("*.tf")), f"module {name}: {source} does not exist"
    declared = _parse_dir(target)["variable"]
    passed = {k for k in body if k not in META_ARGS and k != "__is_block__"}
    unknown = passed - set(declared)
    assert not unknown, f"module {name} passes undeclared variables {sorted(unknown)} to {source}"
    required = {v for v, spec in declared.items() if "default" not in spec}
    missing = required - passed
    assert not missing, f"module {name} misses required variables {sorted(missing)} of {source}"


@pytest.mark.parametrize("module_dir", _module_dirs(), ids=_rel)
def test_infra_references_resolve(module_dir: Path):
    parsed = _parse_dir(module_dir)
    text = re.sub(r"#.*", "", _text(module_dir))  # comments may mention references in prose
    variables = set(re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text))
    assert variables <= set(parsed["variable"]), f"undeclared variables {variables - set(parsed['variable'])}"
    locals_used = set(re.findall(r"\blocal\.([A-Za-z_][\w-]*)", text))
    assert locals_used <= set(parsed["locals"]), f"undeclared locals {locals_used - set(parsed['locals'])}"
    for mod, out in set(re.findall(r"\bmodule\.([\w-]+)\.([\w-]+)", text)):
        assert mod in parsed["module"], f"module.{mod} is not called in {_rel(module_dir)}"
        target = (module_dir / _unquote(parsed["module"][mod]["source"])).resolve()
        assert out in _parse_dir(target)["output"], f"module.{mod}.{out}: no such output in {_rel(target)}"


SECRET_PATTERNS = [
    (r"AKIA[0-9A-Z]{16}", "AWS access key id"),
    (r"(?i)\b(secret_key|access_key|password|token)\s*=\s*\"[^\"$]+\"", "literal credential argument"),
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----", "private key"),
    (r"(?i)aws_secret_access_key", "AWS secret"),
]


@pytest.mark.parametrize(
    "path", sorted(p for p in TF_ROOT.rglob("*") if p.is_file() and p.suffix != ".md"), ids=_rel
)
def test_infra_no_hard_coded_secrets(path: Path):
    text = path.read_text(encoding="utf-8")
    for pattern, what in SECRET_PATTERNS:
        assert not re.search(pattern, text), f"{_rel(path)} contains a {what}"


def test_infra_spark_jobs_get_delta_extension_and_catalog():
    parsed = _parse_dir(TF_ROOT / "modules" / "spark_emr_serverless")
    delta_conf = parsed["locals"]["delta_conf"]
    assert "io.delta.sql.DeltaSparkSessionExtension" in delta_conf
    assert "org.apache.spark.sql.delta.catalog.DeltaCatalog" in delta_conf
    app = parsed["resource"]["aws_emrserverless_application"]['"spark"']
    assert _unquote(app["type"]) == "spark"
    release = parsed["variable"]["release_label"]["default"]
    # The spark_jobs need Spark 4 (Python data sources, DataFrame.toArrow): EMR's Spark 4 line.
    assert _unquote(release).startswith("emr-spark-8"), release


def test_infra_ray_cluster_has_gpu_worker_group():
    parsed = _parse_dir(TF_ROOT / "modules" / "ray_kuberay")
    gpu = str(parsed["locals"]["gpu_group"])
    assert "nvidia.com/gpu" in gpu and "tolerations" in gpu
    spec = str(parsed["locals"]["ray_cluster_spec"])
    assert "local.cpu_group" in spec and "local.gpu_group" in spec
    chart = yaml.safe_load((TF_ROOT / "modules" / "ray_kuberay" / "chart" / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"]
    template = (TF_ROOT / "modules" / "ray_kuberay" / "chart" / "templates" / "raycluster.yaml").read_text()
    assert "kind: RayCluster" in template and "apiVersion: ray.io/v1" in template


def test_infra_cluster_overrides_output_is_a_valid_b2ner_config():
    """The example's `b2ner_cluster_overrides` output only names keys that b2ner's config accepts."""
    text = (TF_ROOT / "examples" / "aws" / "outputs.tf").read_text(encoding="utf-8")
    block = text.split('output "b2ner_cluster_overrides"', 1)[1].split("yamlencode({", 1)[1].split("})", 1)[0]
    overrides = []
    for line in block.strip().splitlines():
        key, _, rest = (part.strip() for part in line.partition("="))
        nested = re.match(r"\{\s*(\w+)\s*=\s*(.+?)\s*\}$", rest)
        if nested:
            value = _unquote(nested.group(2))
            overrides.append(f"{key}.{nested.group(1)}={'s3://bucket/x' if '.' in value else value}")
        else:
            overrides.append(f"{key}=s3://bucket/warehouse")
    assert len(overrides) >= 4
    cfg = load_config(None, overrides)
    assert cfg.spark.delta_jars == "provided"
    assert cfg.warehouse.startswith("s3://")


def test_infra_emr_entrypoint_runs_b2ner_cli(tmp_path: Path):
    """The EMR entry point is the b2ner CLI: `config` with an override prints the resolved config."""
    entry = TF_ROOT / "modules" / "spark_emr_serverless" / "files" / "b2ner_emr_entrypoint.py"
    res = subprocess.run(
        [
            sys.executable,
            str(entry),
            "config",
            "warehouse=s3://bucket/warehouse",
            "spark.delta_jars=provided",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert res.returncode == 0, res.stderr
    resolved = yaml.safe_load(res.stdout)
    assert resolved["warehouse"] == "s3://bucket/warehouse"
    bad = subprocess.run(
        [sys.executable, str(entry), "config", "spark.no_such_key=1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2, "an unknown key must fail with exit code 2"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="terraform binary not installed")
def test_infra_terraform_fmt_check():
    res = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(TF_ROOT)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"terraform fmt -check failed:\n{res.stdout}\n{res.stderr}"
