"""The Gumroad connector (issue 20): Gumroad's pings in (each re-fetched from Gumroad's API before it is trusted),
its sales history imported, license keys carried over; ingest only (Gumroad's API takes no subscription actions)."""
