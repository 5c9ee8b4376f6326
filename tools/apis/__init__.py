"""Simulated stateful APIs (weather, email, calendar, helpdesk tickets) behind the API tools.

Importing this package registers every service (``tools/services.py``) and its tools. Each
scenario run gets fresh service instances built from the scenario's ``state:`` seeds, and
graders read their final ``snapshot()`` (``checks.state``). See docs/services.md.
"""

from __future__ import annotations

from . import calendar, email, tickets, weather  # registers the services and their tools

__all__ = ["calendar", "email", "tickets", "weather"]
