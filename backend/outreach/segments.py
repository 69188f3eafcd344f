"""How many SMS segments a text costs: GSM-7 when every character fits the GSM 03.38
alphabet (160 characters, or 153 a segment when split), else UCS-2 (70, or 67 a segment)."""

from __future__ import annotations

GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: Characters that take an escape plus the character: two septets each.
GSM_EXTENDED = set("^{}\\[~]|€\f")


def encoding(text: str) -> str:
    return "GSM-7" if all(ch in GSM_BASIC or ch in GSM_EXTENDED for ch in text) else "UCS-2"


def count(text: str) -> int:
    if not text:
        return 1
    if encoding(text) == "GSM-7":
        septets = sum(2 if ch in GSM_EXTENDED else 1 for ch in text)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(text.encode("utf-16-le")) // 2  # characters outside the BMP take two
    return 1 if units <= 70 else -(-units // 67)
