"""Embedded WATS-compatible server."""
