"""Customer sign-in: login codes, browser sessions, API customer-session tokens."""
