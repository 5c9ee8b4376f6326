"""The built-in cities of the weather service and the climate profiles their days are drawn from.

Each city has a rough real climate (annual mean, seasonal amplitude, daily swing, humidity,
wind): enough for plausible numbers that change with the season and the hemisphere. A negative
amplitude means a southern-hemisphere city (warmest around January).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Profile = Literal["temperate", "oceanic", "continental", "mediterranean", "arid", "tropical", "highland"]

#: Climate profile -> conditions to draw from (a repeated entry is more likely).
PROFILES: dict[Profile, tuple[str, ...]] = {
    "temperate": ("Sunny", "Sunny", "Partly cloudy", "Partly cloudy", "Cloudy", "Light rain", "Rain",
                  "Thunderstorms"),
    "oceanic": ("Sunny", "Partly cloudy", "Partly cloudy", "Cloudy", "Cloudy", "Light rain", "Light rain",
                "Rain"),
    "continental": ("Sunny", "Sunny", "Partly cloudy", "Partly cloudy", "Cloudy", "Light rain",
                    "Thunderstorms"),
    "mediterranean": ("Sunny", "Sunny", "Sunny", "Partly cloudy", "Partly cloudy", "Cloudy", "Light rain"),
    "arid": ("Sunny", "Sunny", "Sunny", "Sunny", "Partly cloudy", "Haze"),
    "tropical": ("Partly cloudy", "Partly cloudy", "Cloudy", "Light rain", "Rain", "Thunderstorms",
                 "Thunderstorms", "Sunny"),
    "highland": ("Sunny", "Sunny", "Partly cloudy", "Partly cloudy", "Cloudy", "Light rain", "Thunderstorms"),
}

#: Condition -> (lowest, highest) chance of precipitation in percent.
PRECIPITATION: dict[str, tuple[int, int]] = {
    "Sunny": (0, 10), "Haze": (0, 5), "Partly cloudy": (5, 20), "Cloudy": (15, 35),
    "Light rain": (55, 75), "Rain": (75, 95), "Thunderstorms": (60, 90), "Snow": (65, 90),
    "Light snow": (50, 70),
}
RAINY = frozenset({"Light rain", "Rain", "Thunderstorms"})
COMPASS = ("N", "NE", "E", "SE", "S", "SW", "W", "NW")


@dataclass(frozen=True)
class Climate:
    """What a city's generated weather is drawn from."""

    country: str
    aliases: tuple[str, ...] = ()
    mean_c: float = 15.0  # annual mean temperature
    amplitude_c: float = 8.0  # seasonal swing around the mean; negative: southern hemisphere
    swing_c: float = 8.0  # difference between a day's high and low
    humidity: int = 65
    wind_kph: float = 12.0
    profile: Profile = "temperate"


CITIES: dict[str, Climate] = {
    "New York": Climate("United States", ("NYC", "New York City", "NY"), 13.0, 12.5, 8, 63, 15),
    "Los Angeles": Climate("United States", ("LA",), 18.6, 4.5, 9, 65, 10, "mediterranean"),
    "Chicago": Climate("United States", (), 10.3, 14.0, 9, 68, 18, "continental"),
    "Toronto": Climate("Canada", (), 8.9, 13.5, 9, 70, 16, "continental"),
    "Mexico City": Climate("Mexico", ("CDMX",), 16.5, 3.0, 13, 55, 8, "highland"),
    "Sao Paulo": Climate("Brazil", ("São Paulo",), 19.5, -3.5, 9, 78, 9, "tropical"),
    "Buenos Aires": Climate("Argentina", (), 18.0, -6.0, 9, 72, 14),
    "London": Climate("United Kingdom", (), 11.3, 7.0, 7, 75, 15, "oceanic"),
    "Paris": Climate("France", (), 12.3, 8.0, 8, 72, 13, "oceanic"),
    "Berlin": Climate("Germany", (), 10.0, 10.0, 8, 70, 14, "continental"),
    "Madrid": Climate("Spain", (), 15.0, 10.5, 12, 55, 11, "mediterranean"),
    "Rome": Climate("Italy", ("Roma",), 15.7, 8.5, 10, 68, 10, "mediterranean"),
    "Moscow": Climate("Russia", (), 5.8, 14.0, 7, 76, 12, "continental"),
    "Istanbul": Climate("Turkey", (), 14.6, 9.0, 7, 72, 16, "mediterranean"),
    "Cairo": Climate("Egypt", (), 22.5, 7.0, 12, 55, 14, "arid"),
    "Lagos": Climate("Nigeria", (), 27.0, 1.5, 6, 82, 12, "tropical"),
    "Nairobi": Climate("Kenya", (), 18.5, -1.5, 12, 68, 13, "highland"),
    "Johannesburg": Climate("South Africa", ("Joburg",), 16.0, -5.5, 13, 55, 13, "highland"),
    "Dubai": Climate("United Arab Emirates", (), 28.0, 8.0, 9, 60, 14, "arid"),
    "Mumbai": Climate("India", ("Bombay",), 27.5, 2.5, 6, 77, 12, "tropical"),
    "Bangkok": Climate("Thailand", (), 29.0, 1.5, 8, 75, 10, "tropical"),
    "Singapore": Climate("Singapore", (), 27.5, 0.8, 6, 84, 10, "tropical"),
    "Beijing": Climate("China", ("Peking",), 12.9, 15.0, 10, 56, 11, "continental"),
    "Seoul": Climate("South Korea", (), 12.5, 14.0, 8, 65, 10, "continental"),
    "Tokyo": Climate("Japan", (), 16.0, 10.0, 7, 68, 12),
    "Sydney": Climate("Australia", (), 18.5, -5.0, 7, 68, 16),
}
