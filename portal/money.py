"""Money: integer minor units <-> display text, per currency and locale (Babel), zero-decimal currencies."""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision


def minor_unit_digits(currency: str) -> int:
    """Decimal digits of a currency's minor unit: 2 for USD/EUR, 0 for JPY/KRW, 3 for KWD."""
    return get_currency_precision(currency.upper())


def to_decimal(amount: int, currency: str) -> Decimal:
    return Decimal(amount).scaleb(-minor_unit_digits(currency))


# Babel is slow per call and a page shows dozens of amounts; a store has few distinct prices, so cache
# (bench/README.md, speed mechanisms).
@lru_cache(maxsize=8192)
def format_money(amount: int, currency: str, locale: str = "en") -> str:
    """``format_money(123456, 'eur', 'de') == '1.234,56\xa0€'``; ``format_money(1200, 'jpy') == '¥1,200'``."""
    return format_currency(to_decimal(amount, currency), currency.upper(), locale=locale)
