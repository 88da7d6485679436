"""WSXF: WATS's XML report format (UUT reports), read with wats.api.wsxf and validated by the
models. ``validate()`` looks at the root element's namespace first, so this converter does not
claim other XML (TestStand, ATML) that happens to land in the same folder.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pydantic import ValidationError

from wats.api.models.codec import describe_validation_error
from wats.api.wsxf import NAMESPACE, WsxfError, wsxf_to_report
from wats.converters.base import (
    ConverterBase,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    read_source,
)
from wats.xmlsafe import root_element

__all__ = ["WSXFConverter"]

_ROOTS = ("Reports", "Report")


class WSXFConverter(ConverterBase):
    """WATS XML (WSXF) UUT reports; a <Reports> document may hold several."""

    name = "wsxf"
    version = "1.0"
    file_patterns = ("*.xml",)
    kind = "file"
    source_ids = True  # the report's own id is kept: a repair refers to its test by it

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        """Read every <Report> of the document; any unreadable one fails the whole file."""
        data, problem = read_source(source)
        if problem is not None:
            return ConverterResult.fail(problem)
        root = root_element(data)
        if root is None:
            return ConverterResult.fail("not well-formed XML (or it declares a DOCTYPE)")
        if root[0] != NAMESPACE or root[1] not in _ROOTS:
            return ConverterResult.fail(
                f"not WSXF: root element <{root[1]}> in namespace {root[0] or '(none)'!r}, "
                f"expected <Reports> or <Report> in {NAMESPACE!r}"
            )
        try:
            parts = _split_reports(data) if root[1] == "Reports" else [data]
            if not parts:
                return ConverterResult.fail("the <Reports> document holds no <Report>")
            reports = []
            for index, part in enumerate(parts):
                where = f"report {index}: " if len(parts) > 1 else ""
                try:
                    reports.append(wsxf_to_report(part))
                except ValidationError as exc:
                    return ConverterResult.fail(
                        f"{where}not a valid report: {describe_validation_error(exc)}"
                    )
                except WsxfError as exc:
                    return ConverterResult.fail(f"{where}{exc}")
        except ET.ParseError as exc:
            return ConverterResult.fail(f"not well-formed XML: {exc}")
        return ConverterResult.ok(reports, confidence=1.0)

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        """0.9 for a document whose root is WSXF (<Reports>/<Report> in the WSXF namespace),
        0.05 for other XML, 0 for anything that is not XML. Reads only the file's head."""
        try:
            head = source.read_head()
        except OSError:
            return 0.0
        root = root_element(head)
        if root is None:
            return 0.0
        if root[0] == NAMESPACE and root[1] in _ROOTS:
            return 0.9
        return 0.05


def _split_reports(data: bytes) -> list[bytes]:
    """Each <Report> of a <Reports> document as a document of its own (namespace kept).

    ``root_element`` already refused DOCTYPEs and entities, so plain ElementTree is safe here.
    """
    tree = ET.fromstring(data)
    return [ET.tostring(child) for child in tree.findall(f"{{{NAMESPACE}}}Report")]
