"""Products an organization sells (one-time or recurring), their prices and the benefits they grant."""
