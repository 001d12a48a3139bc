"""The seller's accent colour, adjusted so it stays readable in both colour schemes (WCAG 2 contrast).

A seller picks one colour. Pages use it for links and focus rings on the page background, and as the background of
primary buttons under their label. In the light scheme the colour is darkened (mixed with black) until it reaches
4.5:1 against white, which makes white text on it readable too; in the dark scheme it is lightened (mixed with
white) until it reaches 4.5:1 against the dark card colour, and the button label is whichever of white or near-black
reads better on it. Pages, receipts, invoices and emails all take their accent from here.
"""

from __future__ import annotations

import re
from functools import lru_cache

from markupsafe import Markup

DEFAULT_ACCENT = "#2563eb"
# The darkest and lightest surfaces the accent sits on, per scheme (kept in step with portal.css/receipt.css).
LIGHT_SURFACE = "#ffffff"
DARK_SURFACE = "#1b2230"
DARK_TEXT = "#0b0f17"
MIN_CONTRAST = 4.5
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def _rgb(color: str) -> tuple[int, int, int]:
    digits = color[1:]
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _hex(rgb: tuple[float, float, float]) -> str:
    return "#" + "".join(f"{round(max(0.0, min(255.0, channel))):02x}" for channel in rgb)


def luminance(color: str) -> float:
    """WCAG relative luminance of a #rgb/#rrggbb colour."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)

    r, g, b = (linear(channel) for channel in _rgb(color))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio between two colours (1 to 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def _mix_until(color: str, toward: tuple[int, int, int], surface: str) -> str:
    """``color`` mixed with ``toward`` in 5% steps until it reaches MIN_CONTRAST against ``surface``."""
    base = _rgb(color)
    for step in range(21):
        share = step / 20
        r, g, b = (c + (t - c) * share for c, t in zip(base, toward, strict=True))
        candidate = _hex((r, g, b))
        if contrast(candidate, surface) >= MIN_CONTRAST:
            return candidate
    return _hex((float(toward[0]), float(toward[1]), float(toward[2])))


@lru_cache(maxsize=256)
def palette(color: str | None) -> dict[str, str]:
    """The accent and the text colour on it, for each scheme: ``light``, ``on_light``, ``dark``, ``on_dark``."""
    seller = color if color and _HEX.match(color) else DEFAULT_ACCENT
    light = _mix_until(seller, (0, 0, 0), LIGHT_SURFACE)
    dark = _mix_until(seller, (255, 255, 255), DARK_SURFACE)
    on_dark = "#ffffff" if contrast("#ffffff", dark) >= contrast(DARK_TEXT, dark) else DARK_TEXT
    return {"light": light, "on_light": "#ffffff", "dark": dark, "on_dark": on_dark}


def accent_style(color: str | None) -> Markup:
    """The ``<style>`` body that sets ``--accent``/``--on-accent`` for both schemes (print keeps the light one)."""
    p = palette(color)
    # Safe markup: every value is a #rrggbb string palette() built itself, never the seller's raw text.
    return Markup(  # noqa: S704
        f":root {{ --accent: {p['light']}; --on-accent: {p['on_light']}; }}\n"
        "@media screen and (prefers-color-scheme: dark) { "
        f":root {{ --accent: {p['dark']}; --on-accent: {p['on_dark']}; }} }}"
    )


def light_accent(color: str | None) -> str:
    """The light-scheme accent (#rrggbb): emails and PDFs, which are always light."""
    return palette(color)["light"]
