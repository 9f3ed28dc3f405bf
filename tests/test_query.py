from __future__ import annotations

import pytest

from tailored.errors import ConfigError
from tailored.query import context_from, parse_context


def test_known_keys_are_parsed() -> None:
    context = parse_context(["date=2026-12-15T19:30", "lat=48.85", "lon=2.35", "radius_km=3", "recent=a|b",
                             "device=app"])
    assert (context.moment.month, context.moment.hour, context.latitude, context.longitude) == (12, 19, 48.85, 2.35)
    assert (context.recent, context.radius_km, context.device, context.channel) == (("a", "b"), 3.0, "app", None)


@pytest.mark.parametrize(("pairs", "message"), [
    (["weather=rain"], r"Unknown context key\(s\) \['weather'\]. Valid keys -- date: .*lat: .*recent: "),
    (["date=2026-02-30"], "not an ISO-8601 date"),
    (["date=1820-01-01"], "out of range: years 1970 to 2200"),
    (["lat=95", "lon=2"], "lat=95.0 is out of range: -90 to 90 degrees"),
    (["lat=45", "lon=-200"], "lon=-200.0 is out of range: -180 to 180 degrees"),
    (["lat=north", "lon=2"], "lat must be a number, got 'north'"),
    (["lat=45"], "lat and lon go together"),
    (["radius_km=5"], "radius_km=5 needs a positive distance and lat/lon"),
    (["lat=45", "lon=2", "radius_km=-1"], "needs a positive distance"),
    (["lat=nan", "lon=2"], "finite number"),
])
def test_bad_context_is_a_clear_error(pairs: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_context(pairs)


def test_an_error_names_the_key_as_its_caller_wrote_it() -> None:
    """The service's query parameters are named as such, not as command-line flags."""
    with pytest.raises(ConfigError, match="query parameter 'lat' must be a number, got 'north'") as caught:
        context_from({"lat": "north", "lon": "2"})
    assert "--context" not in str(caught.value)


def test_recent_items_from_a_list_follow_those_of_the_recent_key() -> None:
    assert context_from({"recent": "a|b"}, recent=["c"]).recent == ("a", "b", "c")
