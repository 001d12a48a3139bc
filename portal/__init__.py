"""Portal: a self-hosted customer portal for indie sellers, wire-compatible with Polar's customer-portal API."""

__version__ = "0.1.0"
