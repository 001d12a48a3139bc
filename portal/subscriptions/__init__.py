"""Subscriptions: recurring products a customer holds, their billing periods and cancellation state."""
