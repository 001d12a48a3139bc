"""The Jinja2 environment: templates directory, autoescape on, and the filters pages use (money, dates)."""

from __future__ import annotations

from datetime import datetime

from babel.dates import format_date, format_datetime
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from portal.clock import parse_iso
from portal.money import format_money
from portal.resources import templates_dir


def _as_datetime(value: str | datetime | None) -> datetime | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, datetime) else parse_iso(value)


def date_filter(value: str | datetime | None, locale: str = "en", fmt: str = "medium") -> str:
    moment = _as_datetime(value)
    return "" if moment is None else format_date(moment, format=fmt, locale=locale)


def datetime_filter(value: str | datetime | None, locale: str = "en", fmt: str = "medium") -> str:
    moment = _as_datetime(value)
    return "" if moment is None else format_datetime(moment, format=fmt, locale=locale, tzinfo=None)


def money_filter(amount: int | None, currency: str, locale: str = "en") -> str:
    return "" if amount is None else format_money(amount, currency, locale)


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default=True),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["money"] = money_filter
    env.filters["date"] = date_filter
    env.filters["datetime"] = datetime_filter
    return env


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(build_environment()))
