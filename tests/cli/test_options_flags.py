"""List and value flags reach the config literally (they used to be pasted into YAML)."""

import pytest

from b2ner_cli.options import UsageError, comma_list, resolve_config


def test_options_labels_flag_with_quotes_is_not_yaml():
    names = comma_list('say "hi",person', "--labels", "person,location")
    cfg = resolve_config(None, [], **{"predict.labels": names})
    assert cfg.predict.labels == ['say "hi"', "person"]


def test_options_labels_flag_backslash_stays_literal():
    cfg = resolve_config(None, [], **{"predict.labels": comma_list(r"a\x41", "--labels", "x")})
    assert cfg.predict.labels == [r"a\x41"]


def test_options_value_flag_is_not_parsed():
    # "null" and "yes" are YAML scalars; a path typed on the command line is a string.
    assert resolve_config(None, [], warehouse="null").warehouse == "null"
    assert resolve_config(None, [], **{"train.run_name": "yes"}).train.run_name == "yes"


def test_options_empty_list_flag_is_a_usage_error():
    assert comma_list(None, "--labels", "a,b") is None
    with pytest.raises(UsageError, match="--labels is empty"):
        comma_list(" , ,", "--labels", "a,b")


def test_options_overrides_still_yaml_and_flags_win():
    cfg = resolve_config(None, ["select.seed=3", "warehouse=/a"], warehouse="/b")
    assert cfg.select.seed == 3 and cfg.warehouse == "/b"
