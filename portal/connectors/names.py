"""The processors Portal ships with: name -> the label people see.

The one list of them that costs no import: the CLI builds its ``connect``/``import`` subcommands from it, and
``portal serve``'s supervisor builds that parser only to start uvicorn, so importing a processor (each pulls in the
domain services, Litestar and an HTTP client) there would cost every supervisor ~35 MB. Each processor class
takes its ``label`` from here; ``portal.connectors.base.registry`` maps the same names to the processors.
"""

from __future__ import annotations

PROCESSOR_LABELS: dict[str, str] = {
    "stripe": "Stripe",
    "polar": "Polar",
    "lemonsqueezy": "Lemon Squeezy",
    "paddle": "Paddle",
    "gumroad": "Gumroad",
}
