"""Polar's shapes, one home for every surface that answers them: ``models`` (the Structs: Polar's ``Order``,
``Subscription``, ``Customer``, ``BenefitGrant``, ``Product``, ``Price``, ``Address``…), ``convert`` (the ``*_out``
functions that build them from the areas' records) and ``loaders`` (which read what a shape nests through the
areas' ``reads`` modules). The admin API and the webhook payloads answer these shapes; neither package imports
the other (tests/test_import_graph.py)."""
