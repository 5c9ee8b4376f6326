"""The weather service: built-in cities, units, seeds that pin or add cities, errors, the query log."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError
from service_helpers import caller, make_ctx

from agentbench.errors import ToolError
from agentbench.tools import snapshots, tool_spec


def test_builtin_city_current_weather_is_fixed_for_a_date(tmp_path: Path) -> None:
    call = caller(make_ctx(tmp_path, {}, ("weather",)))
    now = call("get_current_weather", city="New York")
    assert now == {
        "city": "New York", "country": "United States", "date": "2024-06-17", "condition": "Sunny",
        "temperature": 26.5, "feels_like": 27.3, "humidity": 60, "wind_speed": 10.6, "wind_direction": "S",
        "units": "metric", "temperature_unit": "°C", "wind_speed_unit": "km/h",
    }


def test_there_are_about_twenty_world_cities_with_plausible_seasons(tmp_path: Path) -> None:
    from agentbench.tools.apis._weather_data import CITIES

    assert len(CITIES) >= 20
    june = caller(make_ctx(tmp_path, {"weather": {"today": "2024-06-17"}}))
    january = caller(make_ctx(tmp_path, {"weather": {"today": "2024-01-15"}}))
    # Northern summer is warmer than northern winter; the southern hemisphere is the other way round.
    assert june("get_forecast", city="Moscow", days=5)["days"][0]["high"] > \
        january("get_forecast", city="Moscow", days=5)["days"][0]["high"] + 10
    assert june("get_current_weather", city="Sydney")["temperature"] < \
        january("get_current_weather", city="Sydney")["temperature"]


def test_imperial_units_convert_temperatures_and_wind(tmp_path: Path) -> None:
    call = caller(make_ctx(tmp_path, {}, ("weather",)))
    metric = call("get_forecast", city="Tokyo", days=2)
    imperial = call("get_forecast", city="Tokyo", days=2, units="imperial")
    assert (imperial["temperature_unit"], imperial["wind_speed_unit"]) == ("°F", "mph")
    for m, i in zip(metric["days"], imperial["days"]):
        assert i["high"] == pytest.approx(m["high"] * 9 / 5 + 32, abs=0.2)
        assert i["wind_speed"] == pytest.approx(m["wind_speed"] / 1.609344, abs=0.2)
        assert (i["date"], i["condition"]) == (m["date"], m["condition"])


def test_forecast_has_the_requested_days_from_today(tmp_path: Path) -> None:
    call = caller(make_ctx(tmp_path, {"weather": {"today": "2024-02-28"}}))
    days = call("get_forecast", city="paris", days=5)["days"]
    assert [d["date"] for d in days] == ["2024-02-28", "2024-02-29", "2024-03-01", "2024-03-02", "2024-03-03"]
    assert all(d["low"] <= d["high"] and 0 <= d["precipitation_chance"] <= 100 for d in days)
    assert len(call("get_forecast", city="Paris")["days"]) == 3  # the default


@pytest.mark.parametrize("spelling", ["NYC", "new york", "New York City", "New York, US", "  NEW-YORK "])
def test_aliases_case_and_a_country_suffix_resolve(tmp_path: Path, spelling: str) -> None:
    assert caller(make_ctx(tmp_path, {}, ("weather",)))("get_current_weather", city=spelling)["city"] == "New York"


def test_unknown_city_lists_close_matches_once_each(tmp_path: Path) -> None:
    bound = tool_spec("get_current_weather").bind(make_ctx(tmp_path, {}, ("weather",)))
    with pytest.raises(ToolError, match=r"^Unknown city 'Nwe York'\. Did you mean: New York\?$"):
        bound.invoke({"city": "Nwe York"})
    with pytest.raises(ToolError, match=r"Unknown city 'Atlantis'\. Supported cities: Bangkok, Beijing"):
        bound.invoke({"city": "Atlantis"})
    with pytest.raises(ToolError, match="city must not be empty"):
        bound.invoke({"city": "  "})


@pytest.mark.parametrize("args", [{"city": "Paris", "days": 0}, {"city": "Paris", "days": 6},
                                  {"city": "Paris", "units": "kelvin"}, {}])
def test_invalid_arguments_are_refused_by_the_schema(tmp_path: Path, args: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        tool_spec("get_forecast").bind(make_ctx(tmp_path, {}, ("weather",))).invoke(args)


def test_seed_pins_current_conditions_and_forecast_days(tmp_path: Path) -> None:
    seed = {"weather": {"today": "2024-06-17", "cities": {"NYC": {
        "current": {"temperature_c": 24, "condition": "Partly cloudy", "humidity": 58, "wind_kph": 14},
        "forecast": [{"high_c": 27, "low_c": 19, "condition": "Rain"}]}}}}
    call = caller(make_ctx(tmp_path, seed))
    now = call("get_current_weather", city="New York", units="imperial")
    assert (now["temperature"], now["condition"], now["humidity"], now["wind_speed"]) == (
        75.2, "Partly cloudy", 58, 8.7)
    days = call("get_forecast", city="New York", days=2)["days"]
    first = days[0]
    assert (first["high"], first["low"], first["condition"], first["precipitation_chance"]) == (27, 19, "Rain", 85)
    assert days[1]["condition"] != "" and days[1]["date"] == "2024-06-18"  # past the pins: generated


def test_seed_adds_a_city_and_changes_a_builtin_one(tmp_path: Path) -> None:
    seed = {"weather": {"cities": {"Reykjavik": {"country": "Iceland", "aliases": ["RVK"], "mean_c": 5,
                                                 "amplitude_c": 6, "profile": "oceanic"},
                                   "Dubai": {"mean_c": -30}}}}
    call = caller(make_ctx(tmp_path, seed))
    assert call("get_current_weather", city="rvk")["country"] == "Iceland"
    dubai = call("get_current_weather", city="Dubai")
    assert dubai["country"] == "United Arab Emirates" and dubai["temperature"] < 0  # only mean_c changed


def test_the_query_log_records_every_lookup(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, {}, ("weather",))
    call = caller(ctx)
    call("get_current_weather", city="nyc", units="imperial")
    call("get_forecast", city="London", days=4)
    with pytest.raises(ToolError):
        call("get_forecast", city="Londn")
    assert snapshots(ctx.state)["weather"]["queries"] == [
        {"seq": 1, "kind": "current", "query": "nyc", "city": "New York", "units": "imperial", "days": None,
         "ok": True},
        {"seq": 2, "kind": "forecast", "query": "London", "city": "London", "units": "metric", "days": 4, "ok": True},
        {"seq": 3, "kind": "forecast", "query": "Londn", "city": None, "units": "metric", "days": 3, "ok": False},
    ]
