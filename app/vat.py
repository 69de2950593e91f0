"""VAT categories of EN 16931 (UNTDID 5305) a line may carry, and what each demands.

A line without a category is standard rated (S) when its rate is above zero and zero rated (Z)
at 0 %. Exempt (E), reverse charge (AE), intra-community supply (K) and export (G) are 0 %
and need the reason the invoice states (BT-120 text and/or BT-121 code, VATEX): E's must be
given; the others have the standard one by default. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal

CATEGORIES = ("S", "Z", "E", "AE", "K", "G")
# The reason the invoice states when none is given (BT-120, BT-121).
DEFAULT_REASONS = {
    "AE": ("Reverse charge", "VATEX-EU-AE"),
    "K": ("Intra-Community supply", "VATEX-EU-IC"),
    "G": ("Export outside the EU", "VATEX-EU-G"),
}
NEEDS_BUYER_VAT_ID = ("AE", "K")  # BR-AE-02, BR-IC-02
NAMES = {"S": "standard rate", "Z": "zero rated", "E": "exempt", "AE": "reverse charge",
         "K": "intra-community supply", "G": "export"}  # fmt: skip


def category(rate: Decimal, given: str | None) -> str:
    return given or ("S" if rate else "Z")


def problem(rate: Decimal, given: str | None, reason: str | None, code: str | None) -> str | None:
    """Why this category, rate and reason cannot go together on a line (None: they can)."""
    chosen = category(rate, given)
    if chosen == "S" and not rate:
        return "a standard-rated (S) line has a rate above 0 %: use Z, E, AE, K or G at 0 %"
    if chosen != "S" and rate:
        return f"category {chosen} ({NAMES[chosen]}) is 0 %: the rate is {rate} %"
    if chosen == "E" and not (reason or code):
        return "an exempt (E) line states why: vatExemptionReason or vatExemptionReasonCode"
    if chosen in ("S", "Z") and (reason or code):
        return f"category {chosen} has no exemption reason"
    return None


def reason(chosen: str, text: str | None, code: str | None) -> tuple[str | None, str | None]:
    """The exemption reason an invoice states for a category: as given, else the default."""
    if text or code:
        return text, code
    return DEFAULT_REASONS.get(chosen, (None, None))
