"""Webhooks to the seller's app: endpoints registered per organization through the admin API, events with
Polar's names and payload shapes, signed per the Standard Webhooks spec, queued in the write transaction of the
change and delivered (with retries and a delivery log) by a background worker. Only ``http(s)://`` URLs."""
