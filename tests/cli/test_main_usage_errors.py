"""Command-line usage errors print a usage message and exit 2, never a traceback (issue 14.4)."""

import pytest

from b2ner_cli.main import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ingest", "--bogus"], "No such option: --bogus"),
        (["nosuchcmd"], "No such command 'nosuchcmd'"),
        (["ingest", "--engine"], "requires an argument"),
        (["predict", "--warehouse", "X"], "No such option: --warehouse"),
    ],
)
def test_main_usage_errors_exit_2_with_a_usage_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_main_config_error_exits_2_naming_the_key(capsys):
    assert main(["config", "select.nosuchknob=1"]) == 2
    assert "nosuchknob" in capsys.readouterr().err
