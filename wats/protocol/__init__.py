"""Planned subpackage: see DESIGN.md (layout) and the open issues."""
