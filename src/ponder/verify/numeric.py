"""Numeric equality with tolerance, for answers that are plain numbers stored as floats (AMC)."""

from __future__ import annotations

import math

from ponder.verify.normalize import as_number


def numeric_equal(
    candidate: str, reference: str, rel_tol: float = 1e-6, abs_tol: float = 1e-9
) -> bool:
    """True when both read as plain numbers ("1,234", "-3.5", "7/8", "\\frac{7}{8}", "50%") that
    agree within the tolerances; False when either is not a plain number."""
    c, r = as_number(str(candidate)), as_number(str(reference))
    if c is None or r is None:
        return False
    return math.isclose(c, r, rel_tol=rel_tol, abs_tol=abs_tol)
