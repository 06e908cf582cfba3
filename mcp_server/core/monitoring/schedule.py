"""Schedule expressions in EventBridge's syntax, ``rate(...)`` and ``cron(...)``, and their next run. Pure.

The same text is an EventBridge Scheduler ``ScheduleExpression`` on AWS and drives
``mlops serve``'s scheduler locally. Source: Amazon EventBridge Scheduler User Guide, "Schedule
types" (rate-based and cron-based schedules); times are UTC.

- ``rate(VALUE UNIT)``: VALUE a positive integer, UNIT ``minute``/``hour``/``day`` when VALUE
  is 1, else ``minutes``/``hours``/``days``.
- ``cron(MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR)``: six fields; each a ``*``, a
  number, a range ``a-b``, a list ``a,b``, or a step ``*/n`` / ``a/n`` / ``a-b/n``; months may be
  ``JAN``–``DEC`` and days of the week ``SUN``–``SAT`` (1 = Sunday, as EventBridge counts).
  One of DAY-OF-MONTH and DAY-OF-WEEK must be ``?``. ``L`` (last day of the month) is accepted
  in DAY-OF-MONTH; ``W``, ``#`` and ``L`` in DAY-OF-WEEK are refused here with a clear error.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

#: Seconds in each rate unit.
_RATE_UNITS = {"minute": 60, "hour": 3600, "day": 86_400}
_MONTHS = {name: i + 1 for i, name in enumerate(calendar.month_abbr[1:])}
_WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
#: field name, lowest, highest, names
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}),
    ("hours", 0, 23, {}),
    ("day-of-month", 1, 31, {}),
    ("month", 1, 12, {k.upper(): v for k, v in _MONTHS.items()}),
    ("day-of-week", 1, 7, _WEEKDAYS),
    ("year", 1970, 2199, {}),
)
#: The shortest rate the scheduler runs, seconds (EventBridge's own minimum is one minute).
MIN_RATE_S = 60


class ScheduleError(ValueError):
    """An expression that is not a valid ``rate(...)`` or ``cron(...)``; the message says why."""


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule expression.

    Attributes:
        expression: the text, as written.
        rate_s: the period in seconds of a ``rate(...)``; None for a ``cron(...)``.
        fields: each cron field's allowed values (minutes, hours, days of month, months,
            days of week 1-7 with 1 = Sunday, years); None for a rate. ``last_day`` marks ``L``.
    """

    expression: str
    rate_s: int | None = None
    fields: tuple[frozenset[int], ...] | None = None
    any_day_of_month: bool = False
    any_day_of_week: bool = False
    last_day: bool = False

    def next_run(self, after: dt.datetime) -> dt.datetime:
        """The first run time strictly after ``after`` (UTC, whole minutes for a cron).

        A rate runs every ``rate_s`` seconds from ``after``: the caller passes the last run.

        Raises:
            ScheduleError: a cron whose fields never match within its years.
        """
        after = after.astimezone(dt.UTC) if after.tzinfo else after.replace(tzinfo=dt.UTC)
        if self.rate_s is not None:
            return after + dt.timedelta(seconds=self.rate_s)
        assert self.fields is not None
        minutes, hours, days, months, weekdays, years = self.fields
        start = after.replace(second=0, microsecond=0) + dt.timedelta(minutes=1)
        day = start.date()
        last_year = max(years)
        while day.year <= last_year:
            if day.year in years and day.month in months and self._day_matches(day, days, weekdays):
                for hour in sorted(hours):
                    for minute in sorted(minutes):
                        moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=dt.UTC)
                        if moment >= start:
                            return moment
            day += dt.timedelta(days=1)
        raise ScheduleError(f"{self.expression} never runs after {after.isoformat()}")

    def _day_matches(self, day: dt.date, days: frozenset[int], weekdays: frozenset[int]) -> bool:
        weekday = day.isoweekday() % 7 + 1  # Sunday = 1, as EventBridge counts
        if self.last_day:
            return day.day == calendar.monthrange(day.year, day.month)[1]
        if self.any_day_of_month:
            return weekday in weekdays
        return day.day in days


def parse_schedule(expression: str) -> Schedule:
    """Parse a ``rate(...)`` or ``cron(...)`` expression (see the module).

    Args:
        expression: the text, at most 256 characters.

    Returns:
        The schedule.

    Raises:
        ScheduleError: the text is not a valid expression; the message names the part at fault
            and what is allowed.
    """
    text = expression.strip() if isinstance(expression, str) else ""
    if len(text) > 256:
        raise ScheduleError("longer than 256 characters")
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+([a-z]+)\s*\)", text)
    if rate:
        return _rate(text, int(rate.group(1)), rate.group(2))
    cron = re.fullmatch(r"cron\((.*)\)", text)
    if cron:
        return _cron(text, cron.group(1).split())
    raise ScheduleError(
        "not a schedule expression; write rate(VALUE UNIT), e.g. rate(1 hour), or "
        "cron(MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR), e.g. cron(0 6 * * ? *)"
    )


def _rate(text: str, value: int, unit: str) -> Schedule:
    singular = unit.rstrip("s")
    if singular not in _RATE_UNITS:
        raise ScheduleError(f"unknown unit {unit!r} in {text}; use minute(s), hour(s) or day(s)")
    if value < 1:
        raise ScheduleError(f"{text}: the value must be a positive integer")
    expected = singular if value == 1 else singular + "s"
    if unit != expected:
        raise ScheduleError(f"{text}: write rate({value} {expected}) (singular for 1, plural otherwise)")
    seconds = value * _RATE_UNITS[singular]
    if seconds > 10 * 365 * 86_400:
        raise ScheduleError(f"{text}: at most ten years")
    return Schedule(expression=text, rate_s=seconds)


def _cron(text: str, parts: list[str]) -> Schedule:
    if len(parts) != 6:
        raise ScheduleError(
            f"{text} has {len(parts)} fields; a cron needs six: "
            "MINUTES HOURS DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR"
        )
    day_of_month, day_of_week = parts[2], parts[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        raise ScheduleError(f"{text}: exactly one of DAY-OF-MONTH and DAY-OF-WEEK must be ?")
    last_day = day_of_month == "L"
    fields = []
    for part, (name, low, high, names) in zip(parts, _FIELDS, strict=True):
        if part == "?" or (name == "day-of-month" and last_day):
            fields.append(frozenset(range(low, high + 1)))
            continue
        fields.append(_field(text, part, name, low, high, names))
    return Schedule(
        expression=text,
        fields=tuple(fields),
        any_day_of_month=day_of_month == "?",
        any_day_of_week=day_of_week == "?",
        last_day=last_day,
    )


def _field(text: str, part: str, name: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for item in part.split(","):
        base, _, step_text = item.partition("/")
        step = _number(text, step_text, name, 1, high - low + 1, {}) if step_text else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first_text, _, last_text = base.partition("-")
            first = _number(text, first_text, name, low, high, names)
            last = _number(text, last_text, name, low, high, names)
            if last < first:
                raise ScheduleError(f"{text}: {name} range {base!r} runs backwards")
        else:
            first = _number(text, base, name, low, high, names)
            last = high if step_text else first
        values.update(range(first, last + 1, step))
    return frozenset(values)


def _number(text: str, token: str, name: str, low: int, high: int, names: dict[str, int]) -> int:
    token = token.upper()
    if token in names:
        return names[token]
    if any(mark in token for mark in ("W", "#", "L")):
        raise ScheduleError(f"{text}: {name} {token!r} uses W, # or L, which this scheduler does not run")
    if not token.isdigit() or not low <= int(token) <= high:
        allowed = f"{low}-{high}" + (f" or {next(iter(names))}-{list(names)[-1]}" if names else "")
        raise ScheduleError(f"{text}: {name} {token!r} is not in {allowed}")
    return int(token)
