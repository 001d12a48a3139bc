"""Seller organizations: one portal each (slug, branding, receipt numbering, portal settings)."""
