"""The Spark session's Delta jars: installed by `make install`, never downloaded, a clear error when missing."""

import re
from pathlib import Path

import pytest

from b2ner_common.config import ConfigError, SparkConfig, load_config
from spark_jobs import session

ROOT = Path(__file__).resolve().parent.parent


def test_spark_session_missing_jars_name_the_install_command(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"make install.*spark.delta_jars"):
        session.delta_jar_paths(SparkConfig(delta_jars=str(tmp_path)))


def test_spark_session_uses_the_configured_jar_folder(tmp_path: Path):
    for name in session.DELTA_JARS:
        (tmp_path / name).write_bytes(b"")
    paths = session.delta_jar_paths(SparkConfig(delta_jars=str(tmp_path)))
    assert [Path(p).name for p in paths] == list(session.DELTA_JARS)
    assert session.delta_jar_paths(SparkConfig(delta_jars="provided")) == []


def test_spark_session_jar_versions_match_the_makefile():
    make = (ROOT / "Makefile").read_text()
    assert re.search(rf"^DELTA_VERSION := {re.escape(session.DELTA_VERSION)}$", make, re.M)
    assert re.search(rf"^DELTA_SCALA := {re.escape(session.DELTA_SCALA)}$", make, re.M)
    req = (ROOT / "requirements.txt").read_text()
    assert f"delta-spark=={session.DELTA_VERSION}" in req  # the Python API matches the jars
    assert "spark.jars.packages" not in (ROOT / "spark_jobs" / "session.py").read_text().split('"""', 2)[2]


def test_spark_session_table_backend_is_gone_with_a_clear_error():
    with pytest.raises(ConfigError, match="table_backend was removed"):
        load_config(None, ["spark.table_backend=delta-rs"])


def test_spark_session_local_driver_skips_c2_and_user_flags_win():
    local = session.driver_java_options(SparkConfig(master="local[2]"))
    assert local == {"spark.driver.extraJavaOptions": session.LOCAL_JIT}
    mine = SparkConfig(master="local[2]", conf={"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=4"})
    assert session.driver_java_options(mine)["spark.driver.extraJavaOptions"].endswith("TieredStopAtLevel=4")
    assert session.driver_java_options(SparkConfig(master="spark://127.0.0.1:7078")) == {}
