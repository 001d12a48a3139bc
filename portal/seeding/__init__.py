"""Seed documents: one JSON format (``models``) loaded atomically by ``loader.load_seed`` for ``portal seed``,
``portal serve --demo`` and ``POST /v1/admin/seed``."""
