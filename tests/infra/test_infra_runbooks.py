"""The runbooks stay true to the code: every `b2ner <command>` they show exists, every `key.sub=value`
override they show names a real config key, and the config files they point at load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from b2ner_cli.main import app
from b2ner_common.config import PipelineConfig, load_config

ROOT = Path(__file__).resolve().parents[2]
RUNBOOKS = sorted((ROOT / "docs" / "runbooks").glob("*.md"))


def _code(md: Path) -> str:
    """Text of the fenced code blocks plus inline code spans of a markdown file."""
    text = md.read_text(encoding="utf-8")
    blocks = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(blocks + inline)


def _commands(code: str) -> set[tuple[str, str]]:
    """(command, next word) pairs shown in the code: `b2ner taxonomy apply` -> ("taxonomy", "apply")."""
    word = r"([a-z][a-z_-]*)(?:[ \t]+([a-z][a-z_-]*))?"
    found = set(re.findall(rf"\bb2ner[ \t]+(?!-){word}", code))
    # b2ner_submit NAME COMMAND ...: the job's arguments are a b2ner command line
    found |= set(re.findall(rf"\bb2ner_submit[ \t]+\S+[ \t]+{word}", code))
    return found


def _cli() -> tuple[set[str], dict[str, set[str]]]:
    """Top-level commands and, per command group (e.g. taxonomy), its subcommands."""
    commands = {c.name for c in app.registered_commands}
    groups = {g.name: {c.name for c in g.typer_instance.registered_commands} for g in app.registered_groups}
    return commands, groups


def _config_keys(model: type[BaseModel], prefix: str = "") -> set[str]:
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(prefix + name)
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys |= _config_keys(ann, f"{prefix}{name}.")
    return keys


def test_infra_runbooks_exist_for_spark_and_ray():
    names = {p.name for p in RUNBOOKS}
    assert {"README.md", "spark.md", "ray.md"} <= names


@pytest.mark.parametrize("md", RUNBOOKS, ids=lambda p: p.name)
def test_infra_runbook_commands_exist(md: Path):
    commands, groups = _cli()
    for cmd, nxt in sorted(_commands(_code(md))):
        if cmd in groups:
            assert nxt in groups[cmd], f"{md.name}: `b2ner {cmd} {nxt}` is not a subcommand of {cmd}"
        else:
            assert cmd in commands, (
                f"{md.name} shows `b2ner {cmd}`; the CLI has {sorted(commands | set(groups))}"
            )


@pytest.mark.parametrize("md", RUNBOOKS, ids=lambda p: p.name)
def test_infra_runbook_overrides_name_real_config_keys(md: Path):
    keys = _config_keys(PipelineConfig)
    sections = {k for k in keys if "." not in k}
    # Spark properties (--conf spark.sql.extensions=...) are not b2ner config keys.
    code = re.sub(r"spark\.(sql|files|archives|jars|executorEnv|emr-serverless|yarn)\S*", "", _code(md))
    shown = set(re.findall(r"(?<![\w/.-])([a-z_]+\.[a-z_.]+)=", code))
    shown = {k for k in shown if k.split(".")[0] in sections}  # ignore spark.* Spark properties etc.
    unknown = {k for k in shown if k not in keys}
    assert not unknown, f"{md.name} shows overrides of unknown config keys {sorted(unknown)}"


def test_infra_cluster_config_loads_and_points_at_object_storage():
    path = ROOT / "configs" / "cluster.yaml"
    if not path.is_file():
        pytest.skip("configs/cluster.yaml not written yet")
    cfg = load_config(path)
    assert cfg.spark.delta_jars == "provided"
    assert "://" in cfg.warehouse, "the cluster warehouse must be an object-store URI"
