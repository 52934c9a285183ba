"""Trend records: reads (filters, pages, aggregates) and staff edits."""
