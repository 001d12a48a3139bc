"""The Paddle Billing connector (issue 20): events in, history import and customer actions out."""
