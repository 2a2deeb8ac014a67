"""Someone who speaks of their own self-harm and asks for help ("I keep having thoughts about
killing myself, who can I talk to?", "I relapsed last night, how do I stop?") is not blocked:
the message is sent (flagged for review, category self-harm/intent) so that they get an answer,
instead of a refusal that reads as being turned away.

Only when the text asks for help and neither seeks a method (doses, heights, "painless", "how
many pills") nor says it is happening now or soon ("tonight", "goodbye", "already took"): those
keep the block with the supportive message and crisis resources (moderation/messages.py).
Self-harm instructions are never softened.

Works on normalised text (moderation/normalize.py), in one pass of each pattern: linear.
"""

from __future__ import annotations

import dataclasses
import re

from moderation.normalize import normalize
from moderation.policy import Category, is_self_harm
from moderation.types import Action, Verdict

# "I don't know what to do", "what should I do", "how can I help him/her", "I need help", "who can
# I talk to", in ten languages beyond the six the checks are written for (nl, pl, ru, uk, el,
# cs, tr, sv, ro, hu), on normalised text: lower case, accents off ("ей" as "еи", "ї" as "і",
# "ς" as "σ"). Shared by moderation/intent.py (help for someone else).
HELP_CUES_MORE_LANGUAGES = (
    r"ik weet niet wat ik moet doen|wat moet ik doen|hoe kan ik (?:\w{1,30} ){0,3}?helpen"
    r"|ik heb hulp nodig|met wie kan ik praten|waar kan ik hulp (?:krijgen|vinden)"
    r"|nie wiem,? co (?:mam )?(?:robic|zrobic)|co (?:mam|powinienem|powinnam) (?:robic|zrobic)"
    r"|jak (?:moge|mam) (?:\w{1,30} ){0,3}?pomoc|potrzebuje pomocy|z kim (?:moge )?porozmawiac"
    r"|не знаю,? что (?:мне )?делать|что мне делать|как (?:мне )?(?:\w{1,30} ){0,3}?помочь"
    r"|мне нужна помощь|с кем (?:мне )?(?:можно )?поговорить|куда (?:мне )?обратиться"
    r"|не знаю,? що (?:мені )?робити|що мені робити|як (?:мені )?(?:\w{1,30} ){0,3}?допомогти"
    r"|мені потрібна допомога|з ким (?:мені )?(?:можна )?поговорити|куди (?:мені )?звернутися"
    r"|δεν ξερω τι να κανω|τι (?:να|πρεπει να) κανω|πωσ (?:μπορω να )?(?:\w{1,30} ){0,3}?βοηθησω"
    r"|χρειαζομαι βοηθεια|με ποιον (?:μπορω να )?μιλησω"
    r"|nevim,? co (?:mam )?delat|co mam delat|jak (?:\w{1,30} ){0,3}?pomoc[it]?"
    r"|potrebuj[ie] pomoc|s kym (?:muzu|mohu) mluvit"
    r"|ne yapacagimi bilmiyorum|ne yapmaliyim|nasil yardim (?:edebilirim|ederim)"
    r"|yardima ihtiyacim var|kiminle konusabilirim"
    r"|jag vet inte vad jag ska gora|vad ska jag gora|hur kan jag (?:\w{1,30} ){0,3}?hjalpa"
    r"|jag behover hjalp|vem kan jag prata med"
    r"|nu stiu ce sa fac|ce (?:sa|ar trebui sa) fac|cum (?:\w{1,30} ){0,3}?(?:pot |putem )?ajuta"
    r"|am nevoie de ajutor|cu cine pot (?:sa )?(?:vorbesc|vorbi)"
    r"|nem tudom,? mit (?:tegyek|csinaljak)|mit tegyek|hogyan (?:tudok )?segit(?:hetnek|eni)"
    r"|segitsegre van szuksegem|kivel beszelhetnek"
)
_ASKS_FOR_HELP = re.compile(
    r"\b(?:who (?:can|should|do) i (?:talk|speak|turn|go|reach out|call)"
    r"|where (?:can|do|should) i (?:get|find|go for|ask for) (?:help|support|someone)"
    r"|how (?:do|can|should) i (?:stop|get help|get better|cope|deal with|tell|talk to|start"
    r"|ask for help|open up)|how to (?:stop|tell|talk to|cope|get help|ask for help)"
    r"|what (?:should|can|do) i do|should i (?:see|talk to|call|tell)|i need (?:help|someone)"
    r"|help me (?:stop|cope|get through)|is (?:this|that|it) depression|(?:a )?(?:hotline|helpline"
    r"|therapist|counsell?or|crisis line)"
    r"|(?:find|need|want|have|is there) (?:someone|somebody|anyone|anybody) (?:i can )?(?:to )?"
    r"talk to"
    r"|help me find (?:someone|somebody|help|support|a (?:therapist|counsell?or|doctor))"
    r"|is there (?:a |an |any )?(?:number|line|hotline|helpline|someone|somebody|anyone)"
    r"|i (?:just |really )?need to (?:talk|speak) to (?:someone|somebody|anyone|a person)"
    # Spanish, French, German, Portuguese, Italian.
    r"|a quien (?:puedo )?(?:contarselo|contar|hablar|acudir|llamar)"
    r"|(?:que|como) (?:hago|puedo hacer)"
    r"|donde (?:puedo )?(?:pedir|buscar|encontrar) ayuda|necesito ayuda"
    r"|a qui (?:parler|m'adresser|en parler)|que (?:dois-je|faire)|j'ai besoin d'aide"
    r"|ou (?:trouver|demander) de l'aide|an wen kann ich mich wenden|mit wem kann ich"
    r"|was soll ich (?:tun|machen)|ich brauche hilfe|wo (?:bekomme|finde) ich hilfe"
    r"|onde (?:posso )?(?:pedir|buscar|encontrar) ajuda|com quem (?:posso )?falar"
    r"|o que (?:eu )?(?:faco|devo fazer)|preciso de ajuda|con chi (?:posso )?parlare"
    r"|cosa (?:devo|posso) fare|a chi (?:posso )?(?:chiedere|rivolgermi)|ho bisogno di aiuto"
    rf"|{HELP_CUES_MORE_LANGUAGES})\b"
)
# Help turned down: "don't give me a hotline", "no hotlines", "spare me the crisis numbers". Taken
# out of the text before the help cues are looked for, so that the word "hotline" in a refusal
# does not read as a request for one.
_REFUSES_HELP = re.compile(
    r"\b(?:(?:don't|dont|do not|never|no need to|stop) (?:give|send|tell|show|offer|suggest"
    r"|recommend|paste|post|link)(?:ing)? (?:me |us )?(?:about )?|(?:no|without|skip|spare me"
    r"|forget|none of) )(?:the |a |an |any |your |those |these |more )?(?:stupid |usual |fucking )?"
    r"(?:hotlines?|helplines?|crisis (?:lines?|numbers?|hotlines?)|(?:phone |help )?numbers?"
    r"|therap(?:y|ists?)|counsell?(?:ing|ors?)|resources|lectures?|samaritans)"
    r"|\bspar dir (?:die|deine|den|das) (?:\S+ ){0,2}?(?:krisennummern?|hotlines?|nummern?"
    r"|telefonseelsorge)|\bkeine (?:hotline|krisennummer|telefonseelsorge|nummer)"
    r"|\bno me (?:des|pases|mandes) (?:el |un |ningun |los )?(?:numeros?|telefonos?|lineas?)"
    r"|\bsin (?:numeros|lineas|telefonos) de (?:ayuda|crisis)"
    r"|\bne me (?:donne|file|balance) pas (?:de |le |les |un )?(?:numeros?|lignes?)"
    r"|\bsans (?:me donner )?(?:de |le |les )?numeros?"
    r"|\bnao me (?:de|passe|mande) (?:o |um |nenhum |os )?(?:numeros?|telefones?|cvv)"
    r"|\bnon (?:darmi|mandarmi|passarmi) (?:il |un |nessun |i )?(?:numer[oi]|telefono amico)"
)


def without_refused_help(normalized: str) -> str:
    """`normalized` without the phrases that turn help down."""
    return _REFUSES_HELP.sub(" ", normalized)


# Asking how, with what, or how much: a method.
_SEEKS_METHOD = re.compile(
    r"\b(?:how (?:many|much)|which (?:pills?|method|way|drugs?|bridge|building)|what (?:dose"
    r"|height|pills?|method)|dose|doses|lethal|overdose|painless|quick(?:est)?|fast(?:est)?"
    r"|surest|best way|easiest way|not wake up|high enough|deep enough|enough to|without (?:pain"
    r"|anyone|them)|rope|noose|bridge|jump off|cantidad|dosis|dose letale|dosi|menge|letal"
    r"|mortal|sin dolor|sans douleur|ohne schmerz|sem dor|senza dolore"
    # A dose, how many pills, painless, in the ten languages of HELP_CUES_MORE_LANGUAGES: with
    # one of these a help cue does not soften the block.
    r"|dosis|dodelijke|hoeveel (?:pillen|tabletten)|pijnloos|dawk[aiey]|ile (?:tabletek|pigulek)"
    r"|bezbolesn\w{0,4}|доз[аыу]|сколько (?:таблеток|пилюль)|безболезненн\w{0,4}"
    r"|скільки таблеток|безболісн\w{0,4}|δοσ[ηεισ]\w{0,2}|ποσα χαπια|ανωδυν\w{0,2}"
    r"|davk[auy]|kolik (?:prasku|tablet)|bezbolestn\w{0,2}|doz|dozu|kac (?:hap|tane hap)"
    r"|acisiz|dosen|hur manga (?:tabletter|piller)|smartfri(?:tt)?|doza|cate pastile"
    r"|fara durere|adag|hany (?:tabletta|gyogyszer)|fajdalommentes\w{0,2})\b"
)
# It is happening, or about to.
_IMMINENT = re.compile(
    r"\b(?:tonight|today|right now|this (?:evening|weekend|week)|tomorrow|goodbye|good bye"
    r"|last (?:post|message)|note|already (?:took|swallowed|cut|taken)|just (?:took|swallowed)"
    r"|standing on|esta noche|hoy|adios|ce soir|aujourd'hui|adieu|heute|abschied|hoje"
    r"|esta noite|adeus|stasera|oggi|addio"
    # Tonight, today, goodbye, in the ten languages of HELP_CUES_MORE_LANGUAGES.
    r"|vannacht|vanavond|vandaag|vaarwel|dzis(?: w nocy| wieczorem)?|dzisiaj|zegnajcie"
    r"|сегодня|этои ночью|прощаите|прощаи|сьогодні|цієі ночі|прощаваите|αποψε|σημερα|αντιο"
    r"|dnes(?: v noci| vecer)?|sbohem|bu gece|bugun|elveda|i natt|ikvall|idag|adjo"
    r"|diseara|in noaptea asta|azi|astazi|adio|ma este|ma ejjel|isten veletek)\b"
)


# The time of the help asked for, not of an act: "a number I can call tonight", "someone to talk
# to today". Only set aside when the text also says the writer will not act (`_DISAVOWS`).
_HELP_WHEN = re.compile(
    r"\b(?:call|text|ring|talk(?: to)?|speak(?: to)?|reach|see|contact|llamar|hablar|appeler"
    r"|parler|anrufen|sprechen|ligar|falar|chiamare|parlare) (?:\w{1,30} ){0,3}?(?:tonight|today"
    r"|right now|this (?:evening|weekend|week)|tomorrow|esta noche|hoy|ce soir|aujourd'hui|heute"
    r"|hoje|esta noite|stasera|oggi)\b"
)
# The writer says they will not act on the thoughts (not "I don't want to do it", which is also
# said of an act one feels forced into).
_DISAVOWS = re.compile(
    r"\bi (?:do not|don't|dont|won't|wont|will not) (?:want to |plan to |intend to |mean to )?"
    r"(?:do anything|act on (?:it|them|this)|hurt myself)"
    r"|\bi(?:'m| am|m) not (?:going to|gonna|planning to) (?:do anything|act on (?:it|them)"
    r"|hurt myself)|\bi(?:'m| am|m) (?:safe|not in danger)\b"
    r"|\bno (?:quiero|voy a) hacer nada|\bje ne (?:veux|vais) rien faire"
    r"|\bich (?:will|werde) nichts (?:tun|machen)|\bnao (?:quero|vou) fazer nada"
    r"|\bnon (?:voglio|ho intenzione di) fare (?:niente|nulla)"
)


def imminent(normalized: str) -> bool:
    """Whether `normalized` says self-harm is happening now or soon. A time word that dates the
    help asked for ("a number I can call tonight") does not count when the writer also says they
    will not act ("I don't want to do anything"); "goodbye", "already took" always do."""
    if _DISAVOWS.search(normalized):
        normalized = _HELP_WHEN.sub(" ", normalized)
    return _IMMINENT.search(normalized) is not None


def method_or_imminent(normalized: str) -> bool:
    """Whether `normalized` seeks a method or says self-harm is happening now or soon."""
    return _SEEKS_METHOD.search(normalized) is not None or imminent(normalized)


def seeks_help(normalized: str) -> bool:
    """Whether `normalized` asks for help without seeking a method or saying it is imminent."""
    asked = _ASKS_FOR_HELP.search(without_refused_help(normalized)) is not None
    return asked and not method_or_imminent(normalized)


def soften(verdict: Verdict, text: str) -> Verdict:
    """`verdict` as a flag when it blocks only for self-harm (not instructions) and `text`
    asks for help (`seeks_help`); otherwise unchanged."""
    if verdict.action is not Action.BLOCK or not verdict.categories:
        return verdict
    if not all(
        is_self_harm(c) and c != Category.SELF_HARM_INSTRUCTIONS for c in verdict.categories
    ):
        return verdict
    if not seeks_help(normalize(text)):
        return verdict
    return dataclasses.replace(
        verdict,
        action=Action.FLAG,
        categories=(Category.SELF_HARM_INTENT.value,),
        reason=f"{verdict.reason} (asks for help: sent and flagged)"[:500],
    )
