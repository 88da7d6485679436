"""Parsing untrusted XML safely: one place for every XML reader in the project.

Test stations write XML that we did not produce (WSXF, ATML, TestStand reports), and a watch
folder is writable by whoever can reach the share. Python's ElementTree does not resolve
external entities, but it does expand internal ones, so a "billion laughs" document would eat
the sandbox's memory. Every document is therefore checked in a bare expat pass that refuses
any DOCTYPE or entity declaration before ElementTree builds a tree from the same bytes.
Real report formats never need either.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from xml.parsers import expat

__all__ = ["XmlError", "local_name", "namespace_of", "parse_xml", "root_element"]


class XmlError(ValueError):
    """The document is not well-formed XML, or holds declarations we refuse to parse."""


class _RootFound(Exception):
    def __init__(self, tag: str) -> None:
        self.tag = tag


def _refuse(what: str) -> Callable[..., None]:
    def handler(*_args: Any) -> None:
        raise XmlError(f"the XML must not contain {what}")

    return handler


def _as_bytes(xml: str | bytes) -> bytes:
    if isinstance(xml, bytes):
        return xml
    # A str is already decoded; drop its encoding declaration so expat does not re-decode.
    stripped = xml.lstrip()
    if stripped.startswith("<?xml"):
        return stripped.split("?>", 1)[1].encode("utf-8")
    return xml.encode("utf-8")


def _guard() -> expat.XMLParserType:
    guard = expat.ParserCreate()
    guard.StartDoctypeDeclHandler = _refuse("a DOCTYPE declaration")
    guard.EntityDeclHandler = _refuse("entity declarations")
    guard.ExternalEntityRefHandler = _refuse("external entities")
    return guard


def parse_xml(xml: str | bytes) -> ET.Element:
    """The root element of ``xml``; :class:`XmlError` naming the line if it is not
    well-formed or declares a DOCTYPE or entities."""
    data = _as_bytes(xml)
    try:
        _guard().Parse(data, True)
        return ET.fromstring(data)
    except (expat.ExpatError, ET.ParseError) as exc:
        raise XmlError(f"not well-formed XML: {exc}") from exc


def root_element(xml: str | bytes) -> tuple[str, str] | None:
    """(namespace, local name) of the document's first element, or None if it is not XML we
    would read. Stops at the first element, so sniffing a large file costs next to nothing."""
    parser = expat.ParserCreate(namespace_separator=" ")

    def start(tag: str, _attrs: object) -> None:
        raise _RootFound(tag)

    parser.StartElementHandler = start
    parser.StartDoctypeDeclHandler = _refuse("a DOCTYPE declaration")
    parser.EntityDeclHandler = _refuse("entity declarations")
    try:
        parser.Parse(_as_bytes(xml), True)
    except _RootFound as found:
        namespace, _, local = found.tag.rpartition(" ")
        return namespace, local
    except (XmlError, expat.ExpatError):
        return None
    return None


def local_name(tag: str) -> str:
    """``Name`` of an ElementTree tag ``{namespace}Name`` (or of a plain ``Name``)."""
    return tag.rpartition("}")[2]


def namespace_of(tag: str) -> str:
    """``namespace`` of an ElementTree tag ``{namespace}Name``; empty for a plain name."""
    return tag[1:].partition("}")[0] if tag.startswith("{") else ""
