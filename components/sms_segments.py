"""How many SMS segments a text costs: GSM-7 when every character is in the GSM 03.38 alphabet (160
septets in one message, 153 per segment once split), else UCS-2 (70 UTF-16 units, 67 per segment).

A split never cuts a character in two: an extension character (two septets: escape + code) or an
astral character (a UTF-16 surrogate pair) that does not fit the rest of a segment starts the next
one, as carriers do; so a long text can take one segment more than its length divided by 153 or 67.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 basic alphabet (one septet each; the escape code itself is not a character).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs the escape septet plus its own.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")

SINGLE_LIMIT: dict[Encoding, int] = {"GSM-7": 160, "UCS-2": 70}
SEGMENT_LIMIT: dict[Encoding, int] = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class SmsSize:
    """A text's size as an SMS: characters as people count them, units (septets or UTF-16 code
    units) as carriers do, and the segments it is sent in."""

    encoding: Encoding
    characters: int
    units: int
    segments: int

    @property
    def per_segment(self) -> int:
        """Units each segment holds: the single-message limit, or the split limit."""
        return SINGLE_LIMIT[self.encoding] if self.segments <= 1 else SEGMENT_LIMIT[self.encoding]


def encoding_of(text: str) -> Encoding:
    return "GSM-7" if all(c in GSM7_BASIC or c in GSM7_EXTENDED for c in text) else "UCS-2"


def unit_cost(character: str, encoding: Encoding) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) one character takes."""
    if encoding == "GSM-7":
        return 2 if character in GSM7_EXTENDED else 1
    return 2 if ord(character) > 0xFFFF else 1


def measure_sms(text: str) -> SmsSize:
    """The encoding, size and segment count of `text`; an empty text is zero segments."""
    encoding = encoding_of(text)
    costs = [unit_cost(character, encoding) for character in text]
    units = sum(costs)
    if units == 0:
        segments = 0
    elif units <= SINGLE_LIMIT[encoding]:
        segments = 1
    else:
        segments = _pack(costs, SEGMENT_LIMIT[encoding])
    return SmsSize(encoding=encoding, characters=len(text), units=units, segments=segments)


def _pack(costs: list[int], capacity: int) -> int:
    """Segments needed when characters of these costs fill segments of `capacity` in order, unsplit."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments, used = segments + 1, 0
        used += cost
    return segments
