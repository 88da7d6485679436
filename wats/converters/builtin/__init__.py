"""Converters that ship with wats-supervisor: WSJF (WATS JSON) and WSXF (WATS XML).

They use only the public SDK (wats.converters.base), exactly as a site's own converter would.
"""

from wats.converters.builtin.wsjf import WSJFConverter
from wats.converters.builtin.wsxf import WSXFConverter

__all__ = ["WSJFConverter", "WSXFConverter"]
