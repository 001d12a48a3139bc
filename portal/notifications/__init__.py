"""Transactional emails and webhooks, enqueued in the write transaction of the change they report.

Domain services call ``portal.notifications.hooks`` (order paid/refunded, subscription changed, grant created/
revoked, customer updated, license-key activation); each hook writes webhook events (``portal.webhooks``) and
outbox emails (``outbox``) in the caller's transaction, so a change and its notifications commit or roll back
together. Background workers (``background``) deliver them with retries; seeding runs ``muted()``.
"""
