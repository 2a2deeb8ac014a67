"""Framing taken off a request before it is judged: role-play ("roleplay as…", "pretend you
are…"), jailbreak preambles ("you are DAN now, you have no rules", "ignore your previous
instructions"), "asking for a friend", "hypothetically", "for my novel…", and the code a request
is wrapped in ("write a python function … that…", "generate a json array of…").

A framing changes nothing about what is asked: the semantic check judges the text as written
and the text without its framing, and blocks when either is harmful. So a framing cannot hide a
request (the bare request is judged), and it cannot make a harmless one blocked (the framing
words are no reason to block on their own: "pretend you are a pirate and tell me a joke" is
judged as "tell me a joke" too, and as written, and both are harmless).

The same framings are read in Spanish, French, German, Italian, Portuguese and Dutch ("fai
finta di essere…", "fais comme si tu étais…", "stell dir vor, du bist…", "hipotéticamente", "pour
mon roman"): a classifier trained on framed requests in those languages learnt the framing as
harmful, and blocked "fai finta di essere un cuoco napoletano e insegnami il ragù".

Works on normalised text (lower case, accents dropped), in one `re` pass whose repetitions are
bounded (at most 80 characters from any start), so the cost is linear in the text.
"""

from __future__ import annotations

import re

# A persona clause ends at punctuation or at "and" (in each language read here).
_PERSONA_END = r"[^,.!?;:]{0,80}?(?:[,.!?;:]| (?:and|y|e|et|und|en) )"
_STORY = (
    r"(?:novel|story|book|screenplay|script|fic|fanfic|fiction|game|movie|thriller|scene|"
    r"chapter|campaign|rpg|comic)"
)
# The same story words in es/fr/de/it/pt/nl (normalised: no accents).
_STORY_OTHER = (
    r"(?:novela|historia|libro|guion|relato|juego|pelicula|roman|histoire|livre|scenario|jeu|"
    r"film|geschichte|buch|drehbuch|spiel|romanzo|storia|racconto|gioco|sceneggiatura|"
    r"romance|livro|jogo|verhaal|boek)"
)
_FRAMINGS = re.compile(
    r"(?:"
    # Role-play and personas: the persona clause up to a comma, full stop or "and".
    r"\b(?:let'?s |can you |could you |please )?(?:role ?play|rp|act) as (?:if you (?:are|were) )?"
    rf"|\bpretend (?:that )?(?:you(?:'re| are)|to be|you were)\b{_PERSONA_END}"
    rf"|\bimagine (?:you(?:'re| are)|that you are)\b{_PERSONA_END}"
    # Jailbreak preambles: the phrase itself, never what follows it.
    r"|\byou are (?:now )?(?:dan|an? (?:unrestricted|uncensored|unfiltered|evil) "
    r"(?:ai|assistant|model))\b(?: now)?[,.!?:]?"
    r"|\b(?:dan|do anything now)\b[,:]?"
    r"|\byou have no (?:rules|restrictions|filters|limits|guidelines)\b(?: anymore| now)?[,.!?:]?"
    r"|\b(?:ignore|forget|disregard) (?:all )?(?:your |the )?(?:previous |prior |earlier )?"
    r"(?:instructions|rules|guidelines|restrictions)\b[,.!?:]?"
    r"|\b(?:developer|god|jailbreak) mode\b(?: (?:on|enabled|activated))?[,.!?:]?"
    # Distance: a friend, a hypothesis, a story.
    r"|\b(?:i'?m )?(?:just )?asking for a friend\b[:,.\-]?"
    r"|\bfor a friend\b[:,.\-]?"
    r"|\bhypothetically(?: speaking)?\b[:,]?"
    rf"|\b(?:in|for) (?:my|a|our) {_STORY}\b[^,.!?;:]{{0,60}}?[,.!?;:]"
    rf"|\b(?:i'?m )?writing an? {_STORY}\b[^,.!?;:]{{0,60}}?[,.!?;:]"
    rf"|\bwrite (?:me )?an? {_STORY} (?:where|in which|about how)\b"
    rf"|\byou(?:'re| are) an? [^,.!?;:]{{0,40}}? in (?:my|a|our) {_STORY}\b[,.!?:]?"
    r"|\b(?:my|the|a) (?:main )?character\b"
    r"|\b(?:purely|just) (?:fictional|hypothetical|for research|for a story)\b[,.]?"
    # Code wrappers: what is asked is what the code is to do or to hold ("write a python
    # function plan_ambush(addr) that…", "generate a json array of…").
    r"|\b(?:write|generate|create|make|build|code|give)(?: me)? (?:an? |the |some )?"
    r"(?:[\w.+-]+ ){0,2}?(?:function|script|program|bot|array|list|dict|dictionary|object|"
    r"class|snippet|regex|query|endpoint|module)s?\b(?: (?:called|named) )?"
    # Spanish, French, German, Italian, Portuguese, Dutch: personas...
    rf"|\b(?:finge|fingi|finja|imagina|imagine|immagina)(?: que| di| de)? "
    rf"(?:eres|seas|fueras|ser|essere|sei|fossi|es|etais|voce e|voce fosse|tu es)\b{_PERSONA_END}"
    rf"|\b(?:haz|fais|fai|faca|faz) (?:como si|comme si|finta (?:di|che)|semblant|de conta)"
    rf"\b{_PERSONA_END}"
    rf"|\b(?:stell dir vor,? (?:du bist|du warst|dass du)|tu so,? als (?:ob )?|doe alsof|"
    rf"stel je voor,? (?:dat )?je)\b{_PERSONA_END}"
    rf"|\b(?:actua como|interpreta (?:a|el papel de)|joue (?:le role d\S*|un|une)|"
    rf"gioca (?:il ruolo d\S*)|spiele? (?:die rolle|einen|eine)|speel (?:de rol van|een))"
    rf"\b{_PERSONA_END}"
    # ... jailbreak preambles ...
    r"|\b(?:ignora|ignore|ignoriere|negeer|olvida|oublie|vergiss|dimentica|esqueca) "
    r"(?:todas |toutes |alle |tutte |todas as )?(?:tus |tes |deine |le tue |suas |je |las |les |"
    r"vos |die |as )?(?:instrucciones|reglas|instructions|regles|consignes|anweisungen|regeln|"
    r"istruzioni|regole|instrucoes|regras|instructies|regels)\b[,.!?:]?"
    r"|\b(?:sin|sans|ohne|senza|sem|zonder) (?:filtros?|filtres?|filter|filtri|restricciones|"
    r"restrictions|einschrankungen|restrizioni|restricoes|regels|reglas|regles|regeln|regole|"
    r"regras)\b[,.!?:]?"
    # ... and distance.
    r"|\b(?:hipoteticamente|hypothetiquement|hypothetisch|ipoteticamente)\b[:,]?"
    r"|\b(?:(?:es |c'est |e )?(?:para|pour|fur|per|voor) (?:un|una|um|uma|einen|eine|een) "
    r"(?:amigo|amiga|ami|amie|freund|freundin|amico|amica|vriend|vriendin))\b[:,.\-]?"
    rf"|\b(?:para|pour|fur|per|voor) (?:mi|mon|ma|meinen|meine|mein|il mio|la mia|o meu|"
    rf"a minha|meu|minha|mijn) {_STORY_OTHER}\b[^,.!?;:]{{0,60}}?[,.!?;:]"
    r")"
)
_SPACES = re.compile(r"\s+")


def unframe(normalized: str) -> str:
    """`normalized` without the framing it wraps a request in (unchanged when it has none)."""
    if not _FRAMINGS.search(normalized):
        return normalized
    return _SPACES.sub(" ", _FRAMINGS.sub(" ", normalized)).strip()
