"""Invoices for orders: numbered per organization, frozen when issued, corrected (never edited) afterwards."""
