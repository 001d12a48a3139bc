"""The fast paths of rendering and row handling give exactly what the plain ones give: ``output_escape`` is
``markupsafe.escape`` as a ``str``, imports still see globals added after a template was first imported,
``row_dict`` equals ``dict(row)``, and the precomputed HMAC equals ``hmac.new``."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3

import pytest
from jinja2 import DictLoader, Undefined
from markupsafe import Markup, escape

from portal.db import row_dict
from portal.i18n import lazy_gettext
from portal.security import hmac_digest
from portal.templating import build_environment
from portal.templating.compiler import PortalCodeGenerator, PortalTemplate
from portal.templating.escaping import output_escape


class HasHtml:
    def __html__(self) -> str:
        return "<b>trusted</b>"


class Plain:
    def __str__(self) -> str:
        return "<i>& 'quoted' \"text\"</i>"


VALUES = ["", "plain", "<script>alert('x') & \"y\"</script>", 0, 12.5, None, True, Markup("<b>safe</b>")]


@pytest.mark.parametrize("value", [*VALUES, HasHtml(), Plain(), lazy_gettext("Overview"), Undefined(name="missing")])
def test_output_escape_is_markupsafe_escape_as_plain_text(value: object) -> None:
    out = output_escape(value)
    assert type(out) is str
    assert out == str(escape(value))


def test_pages_compile_with_output_escape_and_render_the_same_as_jinja() -> None:
    templates = {
        "macros.html": "{% macro row(x) %}<td>{{ x }}</td>{% endmacro %}",
        "page.html": (
            '{% from "macros.html" import row %}<p title="{{ title }}">{{ body }}</p>{{ row(cell) }}'
            "{% set captured %}<i>{{ body }}</i>{% endset %}{{ captured }}{{ trusted }}"
        ),
    }
    context = {"title": 'a "quote"', "body": "<tag> & more", "cell": "<td>", "trusted": Markup("<br>")}
    ours = build_environment()
    ours.loader = DictLoader(templates)
    jinjas = type(ours)(loader=DictLoader(templates), autoescape=True)
    assert ours.code_generator_class is PortalCodeGenerator
    # The same text as Jinja's (what the compiled code looks like is the generator's business; bench/ guards speed).
    assert ours.get_template("page.html").render(context) == jinjas.get_template("page.html").render(context)
    assert "&lt;tag&gt; &amp; more" in ours.get_template("page.html").render(context)


class Attrs:
    name = "<attr>"
    none = None
    nested = {"key": "<item>"}

    def __getattr__(self, name: str) -> str:
        if name == "dynamic":
            return "<dynamic>"
        raise AttributeError(name)


def test_attribute_access_and_output_render_the_same_as_jinja() -> None:
    """``x.name`` through the builtin getattr first: attributes, dict items, missing names (Undefined), nesting,
    attribute values that are None or falsy, ``__getattr__``, and every kind of output value."""
    page = (
        "{{ obj.name }}|{{ obj.none }}|{{ obj.none is none }}|{{ obj.nested.key }}|{{ obj.dynamic }}|"
        "{{ obj.missing is undefined }}|{{ obj.missing | default('d') }}|{{ mapping.a.b }}|"
        "{{ mapping.items is defined }}|{{ mapping.absent | default('<none>') }}|{{ number }}|{{ number.real }}|"
        "{{ trusted }}|{{ trusted.upper() }}|{{ obj.name ~ number }}|{{ obj.name if number else '' }}|"
        "{% for item in rows %}{{ item.label }}{{ loop.index }}{% endfor %}|{{ rows[0].label }}|"
        "{% macro cell(v) %}<td>{{ v.label }}</td>{% endmacro %}{{ cell(rows[1]) }}|{{ nothing }}|{{ zero }}"
    )
    context = {
        "obj": Attrs(),
        "mapping": {"a": {"b": "<b>"}},
        "number": 7,
        "trusted": Markup("<em>ok</em>"),
        "rows": [{"label": "<one>"}, {"label": "two & three"}],
        "nothing": None,
        "zero": 0,
    }
    ours = build_environment()
    ours.loader = DictLoader({"page.html": page})
    jinjas = type(ours)(loader=DictLoader({"page.html": page}), autoescape=True)
    rendered = ours.get_template("page.html").render(context)
    assert rendered == jinjas.get_template("page.html").render(context)
    assert rendered.startswith("&lt;attr&gt;|None|True|&lt;item&gt;|&lt;dynamic&gt;|True|d|&lt;b&gt;|")


def test_imports_see_the_same_globals_as_with_jinjas_own_template_class() -> None:
    templates = {
        "lib.html": "{% macro hello() %}{{ greeting | default('none') }}{% endmacro %}",
        "page.html": '{% from "lib.html" import hello %}{{ hello() }}',
        "other.html": '{% from "lib.html" import hello %}{{ hello() }}',
        "third.html": '{% from "lib.html" import hello %}{{ hello() }}',
        "direct.html": "{{ greeting | default('none') }}",
    }
    ours = build_environment()
    ours.loader = DictLoader(templates)
    jinjas = type(ours)(loader=DictLoader(templates), autoescape=True)
    jinjas.globals.update(ours.globals)
    outputs: dict[str, list[str]] = {"ours": [], "jinja": []}
    for label, env in (("ours", ours), ("jinja", jinjas)):
        outputs[label].append(env.get_template("page.html").render())
        outputs[label].append(env.get_template("page.html").render(greeting="local"))
        # Globals of the importing template that the imported one lacks: a module rendered with them.
        outputs[label].append(env.get_template("third.html", globals={"greeting": "template"}).render())
        outputs[label].append(env.get_template("direct.html").render())
        env.globals["greeting"] = "hi"  # added after lib.html was first imported
        outputs[label].append(env.get_template("other.html").render())
        outputs[label].append(env.get_template("page.html").render())  # a template rendered before the change
        outputs[label].append(env.get_template("direct.html").render())  # its flat globals must be rebuilt
        outputs[label].append(env.from_string("{{ greeting }}").render())
        outputs[label].append(env.from_string('{% from "lib.html" import hello %}{{ hello() }}').render())
    assert isinstance(ours.get_template("page.html"), PortalTemplate)
    assert outputs["ours"] == outputs["jinja"]
    assert outputs["ours"][0] == "none"
    assert outputs["ours"][1:4] == ["none", "template", "none"]
    assert outputs["ours"][6:8] == ["hi", "hi"]


def test_row_dict_equals_dict_of_the_row() -> None:
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT 1 AS a, 'x' AS b, NULL AS c, 2.5 AS D").fetchone()
    assert row_dict(row) == dict(row) == {"a": 1, "b": "x", "c": None, "D": 2.5}
    assert row_dict({"k": "v"}) == {"k": "v"}


@pytest.mark.parametrize(
    ("secret", "value", "purpose"), [("s", "t", "token"), ("é" * 90, "x" * 500, "customer-session")]
)
def test_hmac_digest_is_hmac_sha256_of_the_purpose_key(secret: str, value: str, purpose: str) -> None:
    key = hashlib.sha256(f"{purpose}:{secret}".encode()).digest()
    assert hmac_digest(secret, value, purpose) == hmac.new(key, value.encode(), hashlib.sha256).hexdigest()
    assert hmac_digest(secret, value, purpose) != hmac_digest(secret, value, purpose + "!")
