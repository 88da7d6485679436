"""Converters: turn test-station output into WATS reports.

The SDK (``ConverterBase``, ``ConverterSource``, ``ConverterContext``, ``ConverterResult``) is
the one API every converter uses, built-in or a site's own; ``load_converter_class`` finds a
converter from its config spec; ``report_id`` / ``content_hash`` give reports ids derived from
their source (DESIGN invariant 3). Guide: docs/converters/writing-a-converter.md.
"""

from wats.converters.base import (
    ConverterArgumentsError,
    ConverterBase,
    ConverterContext,
    ConverterKind,
    ConverterResult,
    ConverterSource,
    NoArguments,
    ReferenceLookup,
    matches_patterns,
    read_source,
)
from wats.converters.identity import REPORT_ID_NAMESPACE, content_hash, report_id
from wats.converters.loader import (
    BUILTIN_CONVERTERS,
    ConverterLoadError,
    builtin_converters,
    load_converter_class,
)

__all__ = [
    "BUILTIN_CONVERTERS",
    "REPORT_ID_NAMESPACE",
    "ConverterArgumentsError",
    "ConverterBase",
    "ConverterContext",
    "ConverterKind",
    "ConverterLoadError",
    "ConverterResult",
    "ConverterSource",
    "NoArguments",
    "ReferenceLookup",
    "builtin_converters",
    "content_hash",
    "load_converter_class",
    "matches_patterns",
    "read_source",
    "report_id",
]
