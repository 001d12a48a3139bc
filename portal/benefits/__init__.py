"""Benefits a product grants (custom notes, license keys, downloadables, Discord/GitHub invites, meter
credits, feature flags), the grants that give them to customers, and the files behind downloadables."""
