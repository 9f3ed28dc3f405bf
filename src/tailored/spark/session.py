"""A Spark session for the engine's jobs: pyspark imported lazily (the `spark` extra), Java 17+ checked first.

``spark_session("local[2]", {"spark.driver.memory": "4g"})`` returns a session (the active one when its master
matches). A missing pyspark, a missing or too old Java, or a master that cannot be reached raise ``ConfigError`` with
what to install or fix, so that the CLI exits 2 instead of printing a JVM stack trace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

from tailored.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

MINIMUM_JAVA = 17
DEFAULTS = {
    "spark.sql.session.timeZone": "UTC",  # timestamps read and written as the local engine reads them
    "spark.sql.shuffle.partitions": "8",  # a laptop's default; clusters pass --conf spark.sql.shuffle.partitions=...
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def require_pyspark() -> Any:
    """The ``pyspark`` module, or a ConfigError naming the extra to install."""
    try:
        import pyspark
    except ImportError as error:
        raise ConfigError('Spark jobs need pyspark: install the extra with `pip install ".[spark]"` in the '
                          "checkout (pyspark 4.x, which also needs Java 17).") from error
    return pyspark


def java_version() -> int:
    """Major version of the ``java`` that pyspark will start (``JAVA_HOME`` first, then ``PATH``)."""
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.path.exists(java):
        where = f"JAVA_HOME={home} has no bin/java" if home else "no `java` on PATH"
        raise ConfigError(f"Spark needs Java {MINIMUM_JAVA} and {where}: install it (Debian: "
                          "`apt-get install openjdk-17-jre-headless`) or set JAVA_HOME to a Java 17 installation.")
    output = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60).stderr
    match = re.search(r'version "(\d+)(?:\.(\d+))?', output)
    if not match:
        raise ConfigError(f"Cannot read the Java version from `{java} -version`: {output.strip()[:200]!r}.")
    major = int(match.group(1))
    return int(match.group(2)) if major == 1 and match.group(2) else major  # "1.8.0" is Java 8


def spark_session(master: str = "local[*]", conf: dict[str, str] | None = None,
                  app_name: str = "tailored") -> SparkSession:
    """A session on ``master`` with the engine's defaults, overridden by ``conf``."""
    require_pyspark()
    version = java_version()
    if version < MINIMUM_JAVA:
        raise ConfigError(f"Spark 4 needs Java {MINIMUM_JAVA} or later and found Java {version}: install "
                          "openjdk-17-jre-headless or point JAVA_HOME at a Java 17 installation.")
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in (DEFAULTS | (conf or {})).items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as error:  # py4j / JVM errors: the master URL is the usual cause
        raise ConfigError(f"Cannot start Spark on master {master!r}: {str(error).strip().splitlines()[0][:300]} "
                          "(check the URL, e.g. local[*], spark://host:7077, yarn, k8s://https://host:443).") from error


def parse_conf(pairs: list[str]) -> dict[str, str]:
    """``["k=v", ...]`` from ``--conf`` options into a dict; a pair without ``=`` is a ConfigError naming it."""
    conf = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--conf {pair!r} is not key=value, e.g. --conf spark.driver.memory=4g.")
        conf[key.strip()] = value.strip()
    return conf
