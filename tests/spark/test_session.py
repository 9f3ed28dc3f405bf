"""The session: engine defaults applied, and clear errors for a bad --conf, an old Java and an unreachable master."""

from __future__ import annotations

import pytest

from tailored.errors import ConfigError
from tailored.spark import session as spark_sessions


def test_the_session_runs_a_job_in_utc(spark) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.range(1000).selectExpr("sum(id) AS s").first()["s"] == 499500


def test_conf_pairs_parse_and_a_pair_without_equals_is_named() -> None:
    assert spark_sessions.parse_conf(["spark.driver.memory=4g", " a = b=c "]) == {
        "spark.driver.memory": "4g", "a": "b=c"}
    with pytest.raises(ConfigError, match="'spark.driver.memory' is not key=value"):
        spark_sessions.parse_conf(["spark.driver.memory"])


def test_an_old_java_is_refused_with_what_to_install(monkeypatch) -> None:
    monkeypatch.setattr(spark_sessions, "java_version", lambda: 11)
    with pytest.raises(ConfigError, match="found Java 11: install openjdk-17"):
        spark_sessions.spark_session("local[1]")


def test_no_java_on_the_path_names_the_package(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="no `java` on PATH.*openjdk-17-jre-headless"):
        spark_sessions.java_version()


def test_the_real_java_is_17_or_later() -> None:
    assert spark_sessions.java_version() >= spark_sessions.MINIMUM_JAVA
