"""Config system: every shipped YAML validates, local.yaml is the default, bad keys and values fail clearly."""

from pathlib import Path

import pytest

from b2ner_cli.main import main
from b2ner_common.config import ConfigError, PipelineConfig, load_config

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_files_validate_and_open_with_their_command(path: Path):
    load_config(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    header = []
    for line in lines:
        if not line.startswith("#"):
            break
        header.append(line)
    assert any("b2ner " in h for h in header), f"{path.name} must open with a comment giving its command"


def test_config_files_local_yaml_equals_the_defaults():
    assert load_config(CONFIGS[0].parent / "local.yaml") == PipelineConfig()


def test_config_overrides_are_typed_and_nested():
    cfg = load_config(None, ["select.seed=7", "run.stages=[ingest,taxonomy]", "spark.conf={a.b: c}"])
    assert cfg.select.seed == 7 and cfg.run.stages == ["ingest", "taxonomy"]
    assert cfg.spark.conf == {"a.b": "c"}


@pytest.mark.parametrize(
    "override, message",
    [
        ("selec.seed=1", "selec"),
        ("select.seed=abc", "select.seed"),
        ("select.strategy=best", "select.strategy"),
        ("run.stages=[ingest,fly]", "run.stages"),
        ("noequals", "key=value"),
    ],
)
def test_config_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config(None, [override])


@pytest.mark.parametrize("old", ["train.llm.selection_run", "train.span.selection_run"])
def test_config_renamed_key_names_its_new_key(old):
    with pytest.raises(ConfigError, match=rf"{old}: .*use train.selection_run"):
        load_config(None, [f"{old}=default"])
    assert load_config(None, ["train.selection_run=r1"]).train.selection_run == "r1"


def test_config_cli_exit_codes(tmp_path, capsys):
    assert main(["config", "select.seed=3"]) == 0
    assert "seed: 3" in capsys.readouterr().out
    assert main(["config", "selec.seed=3"]) == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text("select: [1, 2\n", encoding="utf-8")
    assert main(["config", "-c", str(bad)]) == 2
    assert str(bad) in capsys.readouterr().err
    assert main(["config", "-c", str(tmp_path / "missing.yaml")]) == 2
