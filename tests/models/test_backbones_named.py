"""model.base_model names: the packaged MiniLM by default, local directories, a clear error otherwise."""

from __future__ import annotations

import pytest

from b2ner_common.backbones import MINILM, backbone_dir


def test_backbones_default_and_minilm_name_are_the_packaged_weights(minilm_path):
    assert backbone_dir("") == backbone_dir(MINILM) == str(minilm_path)


def test_backbones_local_directory_is_used_as_given(tiny_encoder_dir):
    assert backbone_dir(str(tiny_encoder_dir)) == str(tiny_encoder_dir)


def test_backbones_unknown_name_fails_naming_the_key_and_the_known_names(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model.base_model='nope'.*multilingual-e5-small"):
        backbone_dir("nope")
