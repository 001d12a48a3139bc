"""Customers of an organization: identity (email), billing details, and everything they bought."""
