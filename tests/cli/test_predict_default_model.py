"""`b2ner predict` without --model uses the main job's trained span encoder, never a silent untrained one."""

import pytest

from b2ner_cli.commands.predict import default_model, trained_model_dir
from b2ner_cli.options import UsageError
from b2ner_common.config import load_config


def test_predict_default_model_is_the_trained_span_encoder(tmp_path):
    cfg = load_config(None, [f"train.output_dir={tmp_path / 'runs'}", "train.run_name=b2ner"])
    with pytest.raises(UsageError, match="no model: pass --model DIR"):
        default_model(cfg)
    trained_model_dir(cfg).mkdir(parents=True)
    assert default_model(cfg).model.path == str(tmp_path / "runs" / "b2ner" / "model")


def test_predict_default_model_keeps_an_explicit_model_and_other_families(tmp_path):
    cfg = load_config(None, [f"train.output_dir={tmp_path}", "model.path=/some/dir"])
    assert default_model(cfg).model.path == "/some/dir"
    lexicon = load_config(None, [f"train.output_dir={tmp_path}", "model.family=lexicon"])
    assert default_model(lexicon) is lexicon
