"""Payment-processor connectors (issues 19, 20): a seller's processor (Stripe, …) feeds Portal and receives the
customers' subscription actions back. One module per part, shared by every processor:

* ``store``: connections (one per organization and processor) and their secrets, encrypted at rest;
* ``base``: the ``Processor`` interface a processor implements, and the registry of processors;
* ``events``: inbound events, stored once by the processor's id in the transaction that applies them;
* ``links``: processor price -> Portal product, and processor object -> Portal row links (with versions);
* ``health``: what an operator (CLI, admin API, seller console) sees of a connection;
* ``retention``: applied and ignored events deleted after ``PORTAL_CONNECTOR_EVENT_RETENTION_DAYS``;
* ``inbound_api``: ``POST /v1/integrations/{processor}/{organization_slug}/webhook``;
* ``stripe/``: the Stripe processor (``mapping``: each Stripe object kind applied onto Portal).
"""
