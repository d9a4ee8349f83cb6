"""Ingest: validate, redact, embed, sign; the Node that writes through the log."""
