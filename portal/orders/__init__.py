"""Orders: what a customer paid for (items, totals, receipt numbers) and refunds against them."""
