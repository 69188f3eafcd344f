"""No text may reveal the service; segment counts follow GSM-7 and UCS-2."""

from __future__ import annotations

import pytest

from backend.outreach import segments
from backend.outreach.privacy import revealing_words


@pytest.mark.parametrize("text, found", [
    ("Your Suboxone refill is ready", ["suboxone"]),
    ("Hi! Checking in after your overdose yesterday.", ["overdose"]),
    ("Naloxóne kits at the front desk", ["naloxone"]),
    ("Reminder: detoxing is hard, call us", ["detox"]),
    ("Your appointment at the Bridge Clinic is tomorrow", ["bridge clinic"]),
    ("Does your MAT start Monday?", ["mat"]),
])
def test_revealing_words_are_caught_in_any_form(text, found):
    assert revealing_words(text) == found


@pytest.mark.parametrize("text", [
    "Hi Sam, this is Maria checking in. Call me back at 617-555-0100. Reply STOP to opt out.",
    "That doesn't matter, see you Tuesday at 10:00.",
    "Your appointment is tomorrow at 9:30. Reply STOP to opt out.",
])
def test_ordinary_texts_pass(text):
    assert revealing_words(text) == []


def test_the_patients_full_name_is_revealing_but_a_first_name_is_not():
    assert revealing_words("Hi Jordan Okafor, call us", full_name=("Jordan", "Okafor")) == ["the patient's full name"]
    assert revealing_words("Hi Jordan, call us", full_name=("Jordan", "Okafor")) == []


@pytest.mark.parametrize("text, encoding, count", [
    ("a" * 160, "GSM-7", 1),
    ("a" * 161, "GSM-7", 2),
    ("a" * 306, "GSM-7", 2),
    ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1),  # two septets each: 160
    ("€" * 81, "GSM-7", 2),
    ("ç" + "a" * 69, "UCS-2", 1),  # ç is not GSM (Ç is)
    ("ç" + "a" * 70, "UCS-2", 2),
    ("👋" * 35, "UCS-2", 1),  # two UTF-16 units each: 70
    ("👋" * 36, "UCS-2", 2),
])
def test_segments_follow_the_encoding(text, encoding, count):
    assert segments.encoding(text) == encoding and segments.count(text) == count


@pytest.mark.parametrize("text, count", [
    # Twilio's rules: a split GSM-7 text holds 153 septets a segment; an escaped character (two
    # septets) never straddles two segments
    ("a" * 152 + "€" + "a" * 152, 3),
    ("a" * 153 + "€" + "a" * 151, 2),
    ("a" * 158 + "€", 1),
    ("a" * 159 + "€", 2),
    ("[" * 80, 1),
    ("[" * 81, 2),
    ("a" * 152 + "]" + "a" * 153, 3),
    # UCS-2: 70 units alone, 67 a segment when split; an emoji (a surrogate pair) is never split
    ("a" * 66 + "😀" + "a" * 66, 3),
    ("a" * 65 + "😀" + "a" * 67, 2),
    ("😀" * 35, 1),
    ("😀" * 36, 2),
    ("😀" * 67, 3),
    # Spanish: accents outside GSM-7 make the whole text UCS-2
    ("¿Cómo está? " * 5 + "Hola", 1),
    ("Le recordamos su cita mañana. " * 4 + "Responda ALTO para no recibir más mensajes.", 3),
    ("Niño español: ñ and ¿ and ¡ are GSM-7", 1),
])
def test_segment_counts_agree_with_twilios_rules_at_the_edges(text, count):
    assert segments.count(text) == count


def test_spanish_revealing_words_are_caught_with_and_without_accents():
    assert set(revealing_words("ADICCIÓN, adiccion, Sustancias, opioides, Drogas, METADONA, buprenorfina, "
                               "Suboxone, naloxona, Narcan, sobredosis, desintoxicación, rehabilitación, "
                               "recuperacion, sobrio, sobria")) >= {
        "adiccion", "sustancia", "opioide", "droga", "metadona", "buprenorfina", "suboxone", "naloxona", "narcan",
        "sobredosis", "desintox", "rehab", "rehabilitacion", "recuperacion", "sobrio", "sobria"}
