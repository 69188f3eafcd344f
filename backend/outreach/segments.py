"""How many SMS segments a text costs, as carriers split it (Twilio's published rules).

GSM-7 when every character fits the GSM 03.38 alphabet: 160 septets in one segment, or 153 a
segment when split; an escaped character (€, [, ], {, }, ~, ^, |, \\) takes two septets and is
never split across segments. Otherwise UCS-2 (most Spanish with accents: á, í, ó, ú, ¿ are
outside GSM-7): 70 code units in one segment, or 67 a segment when split; a character outside
the Basic Multilingual Plane (an emoji) takes two units, a surrogate pair that is never split.
"""

from __future__ import annotations

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters that take an escape plus the character: two septets each.
GSM_EXTENDED = set("^{}\\[~]|€\f")
#: (whole text in one segment, a segment of a split text), in septets or UCS-2 code units.
_CAPACITY = {"GSM-7": (160, 153), "UCS-2": (70, 67)}


def encoding(text: str) -> str:
    return "GSM-7" if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text) else "UCS-2"


def _width(ch: str, gsm: bool) -> int:
    if gsm:
        return 2 if ch in GSM_EXTENDED else 1
    return 2 if ord(ch) > 0xFFFF else 1


def count(text: str) -> int:
    """The segments `text` takes (an empty text still costs one)."""
    gsm = encoding(text) == "GSM-7"
    single, split = _CAPACITY["GSM-7" if gsm else "UCS-2"]
    widths = [_width(ch, gsm) for ch in text]
    if sum(widths) <= single:
        return 1
    segments, used = 1, 0
    for width in widths:
        if used + width > split:  # a two-part character goes whole into the next segment
            segments, used = segments + 1, 0
        used += width
    return segments
