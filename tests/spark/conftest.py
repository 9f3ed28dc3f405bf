"""One local[2] Spark session for every Spark test (starting the JVM takes seconds). Skipped without pyspark or Java,
failing instead when ``TAILORED_REQUIRE_SPARK=1`` (CI installs the extra and Java 17)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.conftest import require_extra

require_extra("spark", "pyspark")


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    from tailored.errors import ConfigError
    from tailored.spark.session import spark_session

    try:
        session = spark_session("local[2]", {"spark.driver.memory": "2g", "spark.sql.shuffle.partitions": "4"})
    except ConfigError as error:
        if os.environ.get("TAILORED_REQUIRE_SPARK") == "1":
            pytest.fail(f"{error}; TAILORED_REQUIRE_SPARK=1 makes this a failure", pytrace=False)
        pytest.skip(str(error))
    yield session
    session.stop()
