"""The seller console (issue 21): ``/console`` (sign-in, the organizations a seller may open) and
``/console/<slug>/…`` (team, audit log, settings, integrations).

================== ==========================================================================="""
