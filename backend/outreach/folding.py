"""How Bridgeline reads the words of a text: case and accents folded, so that `ALTO` is `alto`
and `más` is `mas` (the opt-out keywords and the privacy check read texts the same way)."""

from __future__ import annotations

import unicodedata


def folded(text: str) -> str:
    """`text` in lower case without accents or other combining marks."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).lower()
