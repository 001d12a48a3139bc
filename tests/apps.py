"""Apps for tests: ``app_for(settings)`` is ``create_app(settings)`` without building Litestar again.

Building an app costs about half a second of CPU (Litestar registers ~430 route handlers: type hints, signature
models, router copies), and the suite built ~590: a third of its CPU. What ``create_app`` builds into the app sees
only ``portal.app.baked_settings``; everything else of an instance (settings with its data dir, database, clock,
mailer) is ``app.state.portal``, read by the lifespan and every request (``tests/test_app.py`` checks both). So each
test process keeps the apps it built, one pool per ``baked_settings``, and hands a free one out with a new state
(``portal.app.new_state``), what ``create_app`` would have put there.

An app handed out is the test's until the test ends (``handed_out_for_one_test``, an autouse fixture of
``tests/conftest.py``): a test asking twice for the same settings (two processes sharing a database, say) gets two
apps; an app handed to a fixture of a wider scope (a module's served world) stays that fixture's. Tests that change
what an app compiles (``test_i18n_pseudo``'s pseudo-locale) or look inside it (``test_layout_shell``) build their
own with ``create_app``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from litestar import Litestar

from portal.app import baked_settings, create_app, new_state
from portal.clock import Clock
from portal.settings import Settings

_FREE: dict[str, list[Litestar]] = {}  # apps not handed out, by baked settings
_HANDED_OUT: list[tuple[str, Litestar]] = []


def app_for(settings: Settings, *, clock: Clock | None = None, mailer: object = None) -> Litestar:
    """An app serving ``settings`` (with ``clock`` and ``mailer``), as ``create_app`` builds it, for this test."""
    baked = baked_settings(settings)
    key = repr([(name, getattr(baked, name)) for name in baked.__struct_fields__])
    free = _FREE.setdefault(key, [])
    if free:
        app = free.pop()
        app.state["portal"] = new_state(settings, clock=clock, mailer=mailer)
    else:
        app = create_app(settings, clock=clock, mailer=mailer)
    _HANDED_OUT.append((key, app))
    return app


@contextlib.contextmanager
def handed_out_for_one_test() -> Iterator[None]:
    """Around one test (the autouse fixture of ``tests/conftest.py``): apps handed out from here on are free again
    when it ends. Fixtures of a wider scope are set up before it (pytest sets up wider scopes first), so the apps
    they were handed stay theirs: they are never handed out again."""
    first = len(_HANDED_OUT)
    try:
        yield
    finally:
        for key, app in _HANDED_OUT[first:]:
            _FREE[key].append(app)
        del _HANDED_OUT[first:]
