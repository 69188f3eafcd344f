"""The languages Bridgeline texts in, each described once: how its texts end, how dates read,
which keywords and plain-language requests mean stop, start and help, which words would reveal
the service, and its built-in texts.

Adding a language (Portuguese and Haitian Creole are next in the program's towns) is one more
`Language` here, with its lists and texts — no new logic. Keywords are written as they read
once folded (upper case, no accents, no spaces or punctuation: `NO MÁS` is `NOMAS`); the
plain-language patterns and the revealing words as they read folded and lower-cased.
"""

from __future__ import annotations

import dataclasses
import re

#: The language texts fall back to when none exists in the patient's.
FALLBACK = "en"


@dataclasses.dataclass(frozen=True)
class Language:
    #: The primary BCP 47 subtag: `es` serves `es`, `es-MX`, `es-419`…
    code: str
    #: Babel's locale for dates and times.
    locale: str
    #: `{appointment_date}` and `{appointment_time}`, as Babel patterns.
    date_pattern: str
    time_pattern: str
    #: Ends every automatic text; names an opt-out keyword of this language.
    opt_out_hint: str
    opt_out_keywords: frozenset[str]
    opt_in_keywords: frozenset[str]
    #: Opt-in keywords that are also everyday answers ("yes", "sí"): they opt back in only a
    #: patient who opted out; from anyone else they are a reply for the coach.
    affirmative_keywords: frozenset[str]
    help_keywords: frozenset[str]
    #: Requests to stop in plain words, matched on the folded text without apostrophes.
    plain_opt_out: re.Pattern
    #: Words and stems that reveal the service (matched at word starts, folded).
    revealing: tuple[str, ...]
    #: Everyday words that begin with a revealing stem ("sustancial", "soberano"): not revealing.
    harmless: tuple[str, ...]
    #: How a text names the sender when the episode has no coach.
    care_team: str
    #: The built-in texts, by template name: the automatic texts (without the opt-out hint,
    #: which is appended) and the answers to keywords (complete as they are).
    texts: dict[str, str]


_EN_TEXTING = r"(?:text|txt|messag|msg|sms|contact|send|bother)\w*"
#: Words that may stand between "don't" and "text": "don't ever text me", "do not want any more messages".
_EN_BETWEEN = r"(?:(?:ever|want|wanna|need|like|to|get|getting|receive|any|more|these|those|your|the|such|me)\s+){0,4}"

ENGLISH = Language(
    code="en", locale="en_US", date_pattern="EEE MMM d", time_pattern="h:mm a",
    opt_out_hint="Reply STOP to opt out.",
    opt_out_keywords=frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}),
    opt_in_keywords=frozenset({"START", "YES", "UNSTOP"}),
    affirmative_keywords=frozenset({"YES"}),
    help_keywords=frozenset({"HELP", "INFO"}),
    plain_opt_out=re.compile("|".join((
        rf"\b(?:stop|quit|cease|end)\s+(?:getting\s+|receiving\s+)?(?:all\s+|the\s+|these\s+|your\s+)?{_EN_TEXTING}",
        rf"\b(?:dont|do\s+not|never)\s+{_EN_BETWEEN}{_EN_TEXTING}",
        rf"\bno\s+more\s+{_EN_TEXTING}",
        r"\b(?:unsubscribe|opt\s*-?\s*out|optout|opt\s+me\s+out)\b",
        r"\b(?:take|remove)\s+me\s+off\b",
        r"\bremove\s+(?:me|my\s+(?:number|phone))\b",
        r"\blose\s+(?:my|this)\s+number\b",
        r"\bleave\s+me\s+alone\b",
        r"\bwrong\s+(?:number|person)\b",
        r"\bstop\s+(?:it|now|please)\b",
        r"^\s*(?:please\s+)?stop\b",
        r"(?:^|[,.;:!]|\b(?:thanks|thank\s+you|please|pls|just|now|ok|okay))\s*stop\s*[.!]*\s*$",
    ))),
    revealing=("addiction", "addict", "substance", "opioid", "opiate", "drug", "methadone", "buprenorphine",
               "suboxone", "subutex", "sublocade", "naloxone", "narcan", "naltrexone", "vivitrol", "overdose",
               "detox", "rehab", "recovery", "sober", "sobriety", "heroin", "fentanyl", "fentanil", "withdrawal",
               "sud", "oud", "mat", "moud", "treatment program", "bridge clinic", "addiction clinic", "12-step",
               "narcotics", "alcoholics anonymous", "relapse", "clean and sober", "methadone clinic"),
    harmless=(),
    care_team="your care team",
    texts={
        "check_in": "Hi {first_name}, it's {coach_name} checking in. How are you doing? "
                    "Text back or call {callback_phone}.",
        "appointment_reminder": "Hi {first_name}, a reminder of your appointment on {appointment_date} at "
                                "{appointment_time}. Questions? Call {callback_phone}.",
        "opt_out_confirmation": "You will get no more texts from this number. Reply START to get them again.",
        "opt_in_confirmation": "You will get texts from this number again. Reply STOP to opt out.",
        "help": "For help, call {callback_phone}. Reply STOP to opt out.",
    },
)

#: A request not to be written to, sent to or bothered: the command forms only ("no me escriban",
#: "no me mandes"), never a past or a statement ("no me escribió", "no me molesta").
_ES_DONT = (r"(?:escrib(?:a|an|as)|mand(?:e|en|es)|envi(?:e|en|es)|contact(?:e|en|es)|molest(?:e|en|es)"
            r"|text(?:ee|een|ees))\b")

SPANISH = Language(
    code="es", locale="es_US", date_pattern="EEEE, d 'de' MMMM", time_pattern="HH:mm",
    opt_out_hint="Responda ALTO para no recibir más.",
    opt_out_keywords=frozenset({"ALTO", "PARAR", "PARE", "CANCELAR", "BASTA", "BAJA", "NOMAS"}),
    opt_in_keywords=frozenset({"COMENZAR", "SI"}),
    affirmative_keywords=frozenset({"SI"}),
    help_keywords=frozenset({"AYUDA"}),
    plain_opt_out=re.compile("|".join((
        rf"\bno\s+(?:me|nos)\s+(?:(?:vuelva|vuelvan|vuelvas)\s+a\s+|(?:sigan?|sigas)\s+)?{_ES_DONT}",
        r"\bno\s+(?:quiero|deseo)\s+que\s+me\s+(?:escrib|mand|envi|contact|molest)\w*",
        r"\bno\s+(?:quiero|deseo)\s+(?:recibir\s+)?(?:mas\s+)?(?:estos\s+|sus\s+|los\s+|sus\s+)?(?:mensaj|texto)\w*",
        r"\bdej(?:e|en|a)\s+de\s+(?:escrib|mand|envi|contact|molest|text)\w*",
        r"\bno\s+mas\s+(?:mensaj|texto)\w*",
        r"\b(?:numero|persona)\s+(?:equivocad[oa]|incorrect[oa])\b",
        r"\bequivoca\w*\s+de\s+(?:numero|persona)\b",
        r"\b(?:borr|quit|elimin|saqu)\w*\s+(?:de\s+(?:la|su)\s+lista|(?:mi\s+)?(?:numero|telefono))\b",
        r"^\s*(?:por\s+favor\s+)?(?:alto|pare|parar|basta)(?:\s+(?:ya|por\s+favor))?\s*[.!]*\s*$",
    ))),
    revealing=("adiccion", "adicto", "adicta", "sustancia", "substancia", "opioide", "opiaceo", "opiode", "droga",
               "drogodepend", "metadona", "buprenorfina", "naloxona", "sobredosis", "desintox", "rehabilitacion",
               "rehab", "recuperacion", "sobrio", "sobria", "sobriedad", "heroina", "fentanilo", "abstinencia",
               "narcotico", "recaida", "clinica de metadona", "tratamiento de adicciones", "alcoholicos anonimos",
               "narcoticos anonimos"),
    harmless=("sustancial", "substancial", "soberbi", "soberan"),
    care_team="su equipo",
    texts={
        "check_in": "Hola {first_name}, soy {coach_name}. ¿Cómo está? Responda o llame al {callback_phone}.",
        "appointment_reminder": "Hola {first_name}: su cita es el {appointment_date}, {appointment_time}. "
                                "Llame al {callback_phone}.",
        "opt_out_confirmation": "No recibirá más mensajes de este número. Responda COMENZAR para volver a "
                                "recibirlos.",
        "opt_in_confirmation": "Recibirá mensajes de este número otra vez. Responda ALTO para no recibir más.",
        "help": "Para ayuda, llame al {callback_phone}. Responda ALTO para no recibir más.",
    },
)

LANGUAGES: dict[str, Language] = {language.code: language for language in (ENGLISH, SPANISH)}
#: The automatic texts: planned by Bridgeline, the opt-out hint appended.
AUTOMATIC = ("check_in", "appointment_reminder")
#: The answers to keywords, by intent.
REPLIES = {"opt_out": "opt_out_confirmation", "opt_in": "opt_in_confirmation", "help": "help"}


def primary(tag: str | None) -> str:
    """The primary subtag of a BCP 47 tag, lower-cased (`es-MX`, `es_MX` → `es`); English when none."""
    return re.split(r"[-_]", tag or FALLBACK)[0].lower() or FALLBACK


def canonical(tag: str) -> str:
    """A tag in its one written form: `es-mx`, `ES_MX` → `es-MX`; `zh-hant-tw` → `zh-Hant-TW`."""
    first, *rest = re.split(r"[-_]", tag)
    return "-".join([first.lower(), *(part.title() if len(part) == 4 else part.upper() if len(part) == 2 or
                                      part.isdigit() else part.lower() for part in rest)])


def of(tag: str | None) -> Language | None:
    """The language a tag names, if Bridgeline texts in it."""
    return LANGUAGES.get(primary(tag))


def written_in(tag: str | None) -> Language:
    """The language a text tagged `tag` is written in: that one, or English when Bridgeline
    does not text in it."""
    return of(tag) or ENGLISH
