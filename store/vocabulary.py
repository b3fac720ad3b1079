"""One vocabulary for the words every layer shares: distances and lookup types.

A catalog's distance is ``dot`` or ``l2``; ScaNN's training API and the on-device config
spell the same two things differently, so the translations live here, once.
"""

from __future__ import annotations

from enum import Enum
from typing import Literal, get_args


class Distance(str, Enum):
    """How a catalog compares vectors. ``dot``: larger dot product is nearer (the device
    reports negative dot products as distances); ``l2``: squared Euclidean distance."""

    DOT = "dot"
    L2 = "l2"

    def __str__(self) -> str:
        return self.value

    @property
    def scann(self) -> str:
        """The name ScaNN's builder takes (``scann_ops_pybind.builder(..., distance)``)."""
        return "dot_product" if self is Distance.DOT else "squared_l2"

    @property
    def device(self) -> str:
        """The on-device config's ``DistanceMeasure`` enum name."""
        return "DOT_PRODUCT" if self is Distance.DOT else "SQUARED_L2_DISTANCE"


#: How the device builds a query's lookup table for asymmetric-hashing codes. INT8_LUT16
#: is left out on purpose: the Task Library returns garbage for it (docs/ondevice-notes.md).
LookupType = Literal["FLOAT", "INT16", "INT8"]
LOOKUP_TYPES: tuple[str, ...] = get_args(LookupType)
