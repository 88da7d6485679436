"""Converters that ship with wats-supervisor: WATS's own formats (WSJF JSON, WSXF XML) and the
formats test equipment already writes (ATML, TestStand XML, OpenHTF JSON, delimited text).

They use only the public SDK (wats.converters.base), exactly as a site's own converter would.
"""

from wats.converters.builtin.atml import ATMLConverter
from wats.converters.builtin.csv_table import CSVConverter
from wats.converters.builtin.openhtf import OpenHTFConverter
from wats.converters.builtin.teststand_xml import TestStandXMLConverter
from wats.converters.builtin.wsjf import WSJFConverter
from wats.converters.builtin.wsxf import WSXFConverter

__all__ = [
    "ATMLConverter",
    "CSVConverter",
    "OpenHTFConverter",
    "TestStandXMLConverter",
    "WSJFConverter",
    "WSXFConverter",
]
