"""Client library for the WATS REST API."""
