"""The ``wats-supervisor`` command line."""
