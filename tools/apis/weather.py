"""The simulated ``weather`` service: current conditions and a short forecast for known cities.

Data is deterministic: a built-in table of world cities (``_weather_data``) gives each a rough
climate, and every (city, date) pair draws its day from a hash of the two, so the same seed
always gives the same numbers and no wall clock is read ("today" comes from the seed). A seed
may move "today", override any built-in city, add new ones, and pin exact current conditions or
forecast days (scenario authors pin what their answer checks rely on).

Snapshot: ``queries``, the log of lookups (kind, city as typed and as resolved, units, days, ok).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from datetime import date, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from agentbench.errors import ToolError

from ..registry import ToolContext, register_tool
from ..services import ServiceSpec, register_service
from ._common import DEFAULT_TODAY, SeedModel, close_matches, get_service, norm
from ._weather_data import CITIES, COMPASS, PRECIPITATION, PROFILES, RAINY, Climate, Profile

MAX_FORECAST_DAYS = 5
Units = Literal["metric", "imperial"]
_UNIT_LABELS = {"metric": ("°C", "km/h"), "imperial": ("°F", "mph")}


class CurrentSeed(SeedModel):
    """Pinned current conditions of a city (metric)."""

    temperature_c: float
    condition: str = Field(min_length=1)
    humidity: int = Field(default=60, ge=0, le=100)
    wind_kph: float = Field(default=10.0, ge=0)
    feels_like_c: float | None = None


class DaySeed(SeedModel):
    """A pinned forecast day (metric); the first is today, the next tomorrow, and so on."""

    high_c: float
    low_c: float
    condition: str = Field(min_length=1)
    precipitation_chance: int | None = Field(default=None, ge=0, le=100)
    humidity: int | None = Field(default=None, ge=0, le=100)
    wind_kph: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _low_below_high(self) -> DaySeed:
        if self.low_c > self.high_c:
            raise ValueError(f"low_c {self.low_c} is above high_c {self.high_c}")
        return self


class CitySeed(SeedModel):
    """A city to add, or changes to a built-in one (only the keys given replace built-in values)."""

    country: str = ""
    aliases: list[str] = Field(default_factory=list)
    mean_c: float = 15.0
    amplitude_c: float = 8.0
    swing_c: float = Field(default=8.0, ge=0)
    humidity: int = Field(default=65, ge=0, le=100)
    wind_kph: float = Field(default=12.0, ge=0)
    profile: Profile = "temperate"
    current: CurrentSeed | None = None
    forecast: list[DaySeed] = Field(default_factory=list, max_length=MAX_FORECAST_DAYS)


class WeatherSeed(SeedModel):
    """Seed of the weather service: "today" and extra or changed cities (keyed by name)."""

    today: date = DEFAULT_TODAY
    cities: dict[str, CitySeed] = Field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class _City:
    name: str
    climate: Climate
    current: CurrentSeed | None = None
    pinned: tuple[DaySeed, ...] = ()


def _draws(city: str, day: date) -> list[float]:
    """Eight numbers in [0, 1) fixed by (city, day): sha256, never Python's salted ``hash``."""
    digest = hashlib.sha256(f"{city}|{day.isoformat()}".encode()).digest()
    return [int.from_bytes(digest[i:i + 4], "big") / 2**32 for i in range(0, 32, 4)]


def _apparent_c(temp_c: float, humidity: float, wind_kph: float) -> float:
    """Australian apparent temperature (Steadman): one formula for heat and wind chill."""
    vapour = humidity / 100 * 6.105 * math.exp(17.27 * temp_c / (237.7 + temp_c))
    return temp_c + 0.33 * vapour - 0.70 * (wind_kph / 3.6) - 4.00


class WeatherService:
    """One run's weather service: city table, "today", and the log of lookups."""

    def __init__(self, seed: WeatherSeed) -> None:
        self.today = seed.today
        self._cities: dict[str, _City] = {name: _City(name, c) for name, c in CITIES.items()}
        self._lookup: dict[str, str] = {}
        for name, c in CITIES.items():
            self._index(name, c)
        for key, city_seed in seed.cities.items():
            self._add(key, city_seed)
        self._queries: list[dict[str, Any]] = []

    def _index(self, name: str, climate: Climate) -> None:
        for label in (name, *climate.aliases):
            self._lookup[norm(label)] = name

    def _add(self, key: str, seed: CitySeed) -> None:
        name = self._lookup.get(norm(key), key.strip())
        fields = {f.name for f in dataclasses.fields(Climate)}
        changes = {k: getattr(seed, k) for k in seed.model_fields_set if k in fields}
        if "aliases" in changes:
            changes["aliases"] = tuple(changes["aliases"])
        base = self._cities[name].climate if name in self._cities else Climate(country="")
        climate = dataclasses.replace(base, **changes)
        self._cities[name] = _City(name, climate, seed.current, tuple(seed.forecast))
        self._index(name, climate)

    # -- lookups -------------------------------------------------------------------------------

    def resolve(self, query: str) -> _City:
        """The city ``query`` names (name or alias, any case; ``City, Country`` works too)."""
        text = query.strip()
        if not text:
            raise ToolError("city must not be empty; give a city name such as 'London'")
        name = self._lookup.get(norm(text))
        if name is None and "," in text:
            name = self._lookup.get(norm(text.split(",", 1)[0]))
        if name is None:
            # Suggest canonical names only: "New York" once, not also its alias "New York City".
            labels = [*self._cities, *(a for c in self._cities.values() for a in c.climate.aliases)]
            close = list(dict.fromkeys(self._lookup[norm(m)] for m in close_matches(text, labels)))
            hint = f" Did you mean: {', '.join(close)}?" if close else (
                f" Supported cities: {', '.join(sorted(self._cities))}.")
            raise ToolError(f"Unknown city {query!r}.{hint}")
        return self._cities[name]

    def _log(self, kind: str, query: str, city: str | None, units: str, days: int | None) -> None:
        self._queries.append({"seq": len(self._queries) + 1, "kind": kind, "query": query, "city": city,
                              "units": units, "days": days, "ok": city is not None})

    def _lookup_logged(self, kind: str, query: str, units: str, days: int | None) -> _City:
        try:
            city = self.resolve(query)
        except ToolError:
            self._log(kind, query, None, units, days)
            raise
        self._log(kind, query, city.name, units, days)
        return city

    # -- data ----------------------------------------------------------------------------------

    def _day(self, city: _City, offset: int) -> dict[str, Any]:
        """Day ``offset`` after today, metric: pinned by the seed, or drawn from the climate."""
        day = self.today + timedelta(days=offset)
        u = _draws(city.name, day)
        c = city.climate
        season = c.mean_c + c.amplitude_c * math.cos(2 * math.pi * (day.timetuple().tm_yday - 200) / 365.25)
        options = PROFILES[c.profile]
        condition = options[int(u[0] * len(options))]
        shift = (u[1] - 0.5) * 6 - (2.0 if condition in RAINY else 0.0)
        high, low = season + c.swing_c / 2 + shift, season - c.swing_c / 2 + shift + (u[2] - 0.5) * 2
        if low <= 0.5 and condition in RAINY:
            condition = "Snow" if condition == "Rain" else "Light snow"
        lo_p, hi_p = PRECIPITATION.get(condition, (10, 30))
        generated = {
            "date": day.isoformat(), "condition": condition, "high_c": high, "low_c": low,
            "precipitation_chance": round(lo_p + u[3] * (hi_p - lo_p)),
            "humidity": max(15, min(100, round(c.humidity + (u[4] - 0.5) * 20 + (12 if condition in RAINY else 0)))),
            "wind_kph": c.wind_kph * (0.5 + u[5]), "wind_direction": COMPASS[int(u[6] * len(COMPASS))],
        }
        if offset < len(city.pinned):
            pin = city.pinned[offset]
            lo_p, hi_p = PRECIPITATION.get(pin.condition, (10, 30))
            generated.update(high_c=pin.high_c, low_c=pin.low_c, condition=pin.condition,
                             precipitation_chance=(pin.precipitation_chance if pin.precipitation_chance is not None
                                                   else (lo_p + hi_p) // 2))
            if pin.humidity is not None:
                generated["humidity"] = pin.humidity
            if pin.wind_kph is not None:
                generated["wind_kph"] = pin.wind_kph
        return generated

    def current(self, query: str, units: Units) -> dict[str, Any]:
        """Current conditions (today, early afternoon) in ``units``."""
        city = self._lookup_logged("current", query, units, None)
        today = self._day(city, 0)
        temp = today["low_c"] + 0.75 * (today["high_c"] - today["low_c"])
        condition, humidity, wind = today["condition"], today["humidity"], today["wind_kph"]
        feels = None
        if city.current is not None:
            pin = city.current
            temp, condition, humidity, wind, feels = (pin.temperature_c, pin.condition, pin.humidity,
                                                      pin.wind_kph, pin.feels_like_c)
        feels = _apparent_c(temp, humidity, wind) if feels is None else feels
        t_unit, w_unit = _UNIT_LABELS[units]
        return {
            "city": city.name, "country": city.climate.country, "date": self.today.isoformat(),
            "condition": condition, "temperature": _temp(temp, units), "feels_like": _temp(feels, units),
            "humidity": humidity, "wind_speed": _speed(wind, units), "wind_direction": today["wind_direction"],
            "units": units, "temperature_unit": t_unit, "wind_speed_unit": w_unit,
        }

    def forecast(self, query: str, days: int, units: Units) -> dict[str, Any]:
        """Daily forecast for ``days`` days starting today, in ``units``."""
        city = self._lookup_logged("forecast", query, units, days)
        t_unit, w_unit = _UNIT_LABELS[units]
        rows = []
        for offset in range(days):
            d = self._day(city, offset)
            rows.append({"date": d["date"], "condition": d["condition"], "high": _temp(d["high_c"], units),
                         "low": _temp(d["low_c"], units), "precipitation_chance": d["precipitation_chance"],
                         "humidity": d["humidity"], "wind_speed": _speed(d["wind_kph"], units)})
        return {"city": city.name, "country": city.climate.country, "units": units, "temperature_unit": t_unit,
                "wind_speed_unit": w_unit, "days": rows}

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """``queries``: every lookup, in order (failed ones with ``city: null, ok: false``)."""
        return {"queries": [dict(q) for q in self._queries]}


def _temp(celsius: float, units: Units) -> float:
    return round(celsius * 9 / 5 + 32 if units == "imperial" else celsius, 1)


def _speed(kph: float, units: Units) -> float:
    return round(kph / 1.609344 if units == "imperial" else kph, 1)


register_service(ServiceSpec("weather", WeatherSeed, WeatherService,
                             "current conditions and forecasts for a fixed set of world cities"))


class CurrentWeatherArgs(BaseModel):
    city: str = Field(description="City name, e.g. 'New York' or 'Paris, France'")
    units: Units = Field(default="metric", description="metric (°C, km/h) or imperial (°F, mph)")


class ForecastArgs(BaseModel):
    city: str = Field(description="City name, e.g. 'Tokyo'")
    days: int = Field(default=3, ge=1, le=MAX_FORECAST_DAYS,
                      description=f"number of days starting today (1-{MAX_FORECAST_DAYS})")
    units: Units = Field(default="metric", description="metric (°C, km/h) or imperial (°F, mph)")


@register_tool(
    "get_current_weather", CurrentWeatherArgs,
    "Get the current weather in a city: condition, temperature, feels-like temperature, humidity and "
    "wind. Returns JSON. Unknown cities are an error that suggests close matches.",
    group="weather", blocking=False, service="weather",
)
def get_current_weather(ctx: ToolContext, args: CurrentWeatherArgs) -> dict[str, Any]:
    return get_service(ctx, "weather", WeatherService).current(args.city, args.units)


@register_tool(
    "get_forecast", ForecastArgs,
    f"Get the daily weather forecast for a city for 1-{MAX_FORECAST_DAYS} days starting today: per day "
    "the date, condition, high and low temperature, chance of precipitation, humidity and wind. Returns JSON.",
    group="weather", blocking=False, service="weather",
)
def get_forecast(ctx: ToolContext, args: ForecastArgs) -> dict[str, Any]:
    return get_service(ctx, "weather", WeatherService).forecast(args.city, args.days, args.units)
