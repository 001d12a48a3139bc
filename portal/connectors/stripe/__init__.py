"""The Stripe processor: ``client`` (the official SDK, pinned API version, ``PORTAL_STRIPE_API_BASE``) and
``processor`` (credentials check, webhook verification, event mapping onto Portal's area services)."""
