"""What a reply asks for: to stop texts, to start them again, help — or nothing (a reply for the
coach) — and in which language it asked, so the answer comes in that language.

privacy.md: the opt-out keywords of every language Bridgeline texts in (STOP, ALTO…), in any
case, with or without accents and with any surrounding spaces or punctuation, opt out at once,
and so does any reasonable plain-language request ("please stop texting me", "no me escriban
más"); START, YES, UNSTOP (COMENZAR, SÍ…) opt back in; HELP, INFO (AYUDA) get a short reply.
The lists are in `backend.outreach.languages`, one place per language.
"""

from __future__ import annotations

import dataclasses
import enum
import re

from backend.outreach import languages
from backend.outreach.folding import folded


class Intent(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


@dataclasses.dataclass(frozen=True)
class Reading:
    intent: Intent | None
    #: A bare keyword (True) rather than a sentence.
    bare: bool
    #: The language the request was made in (English when it asked for nothing).
    language: str
    #: An opt-in word that is also an everyday answer ("yes", "sí").
    affirmative: bool = False


def _as_read(text: str) -> str:
    """Folded, and apostrophes dropped: "Don’t" reads as "dont"."""
    return folded(text).replace("'", "").replace("’", "")


def read(body: str) -> Reading:
    """What the reply asks for, whether as a bare keyword, and in which language."""
    keyword = re.sub(r"[^A-Z]", "", folded(body).upper())
    for language in languages.LANGUAGES.values():
        for intent, words in ((Intent.OPT_OUT, language.opt_out_keywords), (Intent.OPT_IN, language.opt_in_keywords),
                              (Intent.HELP, language.help_keywords)):
            if keyword in words:
                return Reading(intent, True, language.code, keyword in language.affirmative_keywords)
    text = _as_read(body)
    for language in languages.LANGUAGES.values():
        if language.plain_opt_out.search(text):
            return Reading(Intent.OPT_OUT, False, language.code)
    return Reading(None, False, languages.FALLBACK)


def intent(body: str) -> tuple[Intent | None, bool]:
    """The reply's intent, and whether it was a bare keyword (True) rather than a sentence."""
    reading = read(body)
    return reading.intent, reading.bare
