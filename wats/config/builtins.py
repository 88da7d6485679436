"""The names of the converters that ship with wats-supervisor, and where their classes live.

Kept in the config package, free of imports, so that a configuration naming a converter can be
checked (``converter = "wsjff"`` refused with a suggestion) without importing the converters;
``wats.converters.loader`` resolves the same table to classes.
"""

from __future__ import annotations

__all__ = ["BUILTIN_CONVERTERS"]

BUILTIN_CONVERTERS: dict[str, str] = {
    "wsjf": "wats.converters.builtin.wsjf:WSJFConverter",
    "wsxf": "wats.converters.builtin.wsxf:WSXFConverter",
    "atml": "wats.converters.builtin.atml:ATMLConverter",
    "teststand-xml": "wats.converters.builtin.teststand_xml:TestStandXMLConverter",
    "openhtf": "wats.converters.builtin.openhtf:OpenHTFConverter",
    "csv": "wats.converters.builtin.csv_table:CSVConverter",
}
"""Short name -> import path of the converters that ship with wats-supervisor."""
