"""Texts must not reveal the service (privacy.md "SMS rules").

A message is checked for words that disclose substance-use treatment in every language
Bridgeline texts in, whatever the message's own (and, when the patient is known, for their full
name). Templates are refused with 422 `message-privacy` when saved; a coach's free text is
refused unless the coach explicitly confirms it.
"""

from __future__ import annotations

import re

from backend.outreach import languages
from backend.outreach.folding import folded

#: Words and stems that reveal the service, in every language a text can be written in; matched
#: at word starts without case or accents, so "overdosed", "Suboxone®", "detoxing", "Sobredosis"
#: and "desintoxicación" are caught too.
REVEALING = tuple(dict.fromkeys(word for language in languages.LANGUAGES.values() for word in language.revealing))
#: Everyday words that begin with a revealing stem ("sustancial"): not revealing.
HARMLESS = tuple(word for language in languages.LANGUAGES.values() for word in language.harmless)

_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def revealing_words(text: str, *, full_name: tuple[str, str] | None = None) -> list[str]:
    """The revealing words in `text`, as listed in REVEALING (sorted, each once)."""
    plain = folded(text)
    words = _WORD.findall(plain)
    joined = " ".join(words)
    # each part of a hyphenated word too ("anti-drogas", "post-sobredosis"); not the harmless ones
    words = [word for whole in words for word in dict.fromkeys((whole, *re.split(r"[-']", whole)))
             if not word.startswith(HARMLESS)]
    found = set()
    for term in REVEALING:
        if " " in term:
            if re.search(rf"\b{re.escape(term)}\b", joined):
                found.add(term)
        elif len(term) <= 4:  # short words only whole or plural ("drug", "drugs"; "mat" not "matter")
            if term in words or f"{term}s" in words:
                found.add(term)
        elif any(word.startswith(term) for word in words):
            found.add(term)
    if full_name is not None:
        given, family = (folded(part) for part in full_name)
        if re.search(rf"\b{re.escape(given)}\b.*\b{re.escape(family)}\b", joined):
            found.add("the patient's full name")
    return sorted(found)
