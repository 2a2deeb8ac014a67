"""Protective intent: harmful words written to protect someone, not to do harm.

Someone asks for a helpline while speaking of hurting themselves, a teacher asks for the signs
that a child is exploited online, a parent asks how to report an adult asking her daughter for
photos, a moderator quotes a hateful post to ask whether to report it, a person finds spyware
on their own phone, a pupil asks how propaganda dehumanised a minority, a writer wants a
fade-to-black scene, a player asks how to kill a boss, a cook how to kill a lobster. The pattern
and semantic checks see the vocabulary of the harm and block; the intent says the text is about
protection, learning, fiction, a game or a kitchen.

`intent_of` finds such an intent, one of `Intent`, from cues in the six supported languages
(English, Spanish, French, German, Portuguese, Italian). On input, `lower` turns a block of a
check that judges words without intent (`Check.lowered_by_intent`: patterns, semantic) into a
flag when:

- the text has an intent whose categories (`LOWERS`) cover every category the block names: a
  game makes "kill" a move, not a ghost story's "blood"; a parent's worry covers sexual
  content with minors, a story never does;
- the text makes no operational ask (`operational_ask`): how to make, build, get, buy or use
  something harmful, step by step, quantities, "without getting caught", a request to send or
  share material, or a first-person threat outside quotes. A protective wrapper around such an
  ask ("as a teacher, how do I make a pipe bomb for a lesson") keeps the block. A named game
  makes not being caught a move, a kitchen makes a recipe cooking; a real person harmed keeps
  the block in both;
- self-harm instructions are never lowered, nor self-harm that seeks a method or says it is
  imminent (moderation/support.py's own tests, which also treat a plea for help).

The flag sends the text and records it for review with the check's own category and the
intent in its reason, so a wrong lowering is seen, and an operator who wants none sets
`MODERATION_PROTECTIVE_INTENT` off.

Not on output: a model's answer asks for nothing, so instructions given under a protective cue
would pass.

Every pattern is an alternation of phrases whose repetitions are bounded (at most 100
characters in a gap, 30 in a word, 300 in a quote), matched once over the normalised text
(moderation/normalize.py): linear in the text.
"""

from __future__ import annotations

import dataclasses
import re
from enum import StrEnum

from moderation import support
from moderation.checks.patterns import load_terms
from moderation.normalize import normalize
from moderation.policy import Category, canonical, is_self_harm
from moderation.types import Action, Verdict


class Intent(StrEnum):
    HELP_SEEKING = "help-seeking"
    REPORTING = "reporting"
    CHILD_SAFETY = "child safety"
    OWN_SAFETY = "own safety"
    EDUCATION = "education"
    FICTION = "fiction"
    GAMING = "gaming"
    COOKING = "cooking"
    SELF_DEFENCE = "self-defence"
    PRODUCTION = "film and stage effects"
    ANIMALS = "pests and game"
    ABOUT_ONESELF = "about oneself"


_C = Category
_ALL_BUT_INSTRUCTIONS = frozenset(c.value for c in Category) - {_C.SELF_HARM_INSTRUCTIONS.value}
# Violence words aimed at no one: a game's moves, a kitchen's food.
_VIOLENCE_TO_NO_ONE = frozenset(
    c.value
    for c in (_C.VIOLENCE, _C.VIOLENCE_GRAPHIC, _C.HARASSMENT_THREATENING, _C.ILLICIT_VIOLENT)
)
# The categories an intent may lower. Reporting covers what can be quoted; fiction and
# education never cover sexual content with minors; a game covers violence, not hate.
LOWERS: dict[Intent, frozenset[str]] = {
    Intent.HELP_SEEKING: frozenset(
        c.value
        for c in (
            _C.SELF_HARM,
            _C.SELF_HARM_INTENT,
            _C.VIOLENCE,
            _C.VIOLENCE_GRAPHIC,
            _C.ILLICIT,
            _C.HARASSMENT,
            _C.HARASSMENT_THREATENING,
            _C.SEXUAL_MINORS,
            _C.PRIVACY,
        )
    ),
    Intent.REPORTING: _ALL_BUT_INSTRUCTIONS,
    Intent.CHILD_SAFETY: _ALL_BUT_INSTRUCTIONS,
    Intent.OWN_SAFETY: frozenset(
        c.value
        for c in (
            _C.PRIVACY,
            _C.ILLICIT,
            _C.HARASSMENT,
            _C.HARASSMENT_THREATENING,
            _C.VIOLENCE,
        )
    ),
    # "Where do I hit an attacker so I can run": violence done to whoever attacks the writer.
    Intent.SELF_DEFENCE: _VIOLENCE_TO_NO_ONE,
    Intent.EDUCATION: frozenset(
        c.value
        for c in (
            _C.HATE,
            _C.HATE_THREATENING,
            _C.VIOLENCE,
            _C.VIOLENCE_GRAPHIC,
            _C.ILLICIT,
            _C.ILLICIT_VIOLENT,
            _C.SEXUAL,
            _C.SELF_HARM,
            _C.SELF_HARM_INTENT,
            _C.HARASSMENT,
        )
    ),
    Intent.FICTION: frozenset(
        c.value
        for c in (
            _C.VIOLENCE,
            _C.VIOLENCE_GRAPHIC,
            _C.SEXUAL,
            _C.SELF_HARM,
            _C.SELF_HARM_INTENT,
            _C.HARASSMENT,
            _C.HARASSMENT_THREATENING,
            _C.ILLICIT_VIOLENT,
        )
    ),
    Intent.GAMING: _VIOLENCE_TO_NO_ONE,
    # "Murder the onions", "kill a lobster humanely", "butcher a chicken": violence words whose
    # object is food, and knives (read as weapons). Never drugs, hate, self-harm; a kitchen
    # that names a weapon or a poison is no kitchen (`operational_ask`).
    Intent.COOKING: _VIOLENCE_TO_NO_ONE,
    # Fake blood, a slit throat in scar wax, a prop knife: the harm is make-up. The semantic
    # check reads some of it as illicit; a drug, a poison or a weapon is never a prop
    # (`operational_ask`, as in a kitchen).
    Intent.PRODUCTION: _VIOLENCE_TO_NO_ONE | {_C.ILLICIT.value},
    # Rats in the attic, bedbugs, a wild boar's calibre: killing an animal that is a pest or
    # game. Pets are no cue ("poison the neighbour's cat" keeps its block).
    Intent.ANIMALS: _VIOLENCE_TO_NO_ONE,
    # "Roast me": the writer is the target and asks for it. Not threats.
    Intent.ABOUT_ONESELF: frozenset({_C.HARASSMENT.value}),
}

# A named game or words only games use: with one, evading being caught ("kill someone without
# getting caught" in Among Us) is how the game is played.
_NAMED_GAME = (
    r"\b(?:among us|impostors?|imposters?|crewmates?|warzone|apex(?: legends)?|pubg|fortnite"
    r"|valorant|minecraft|roblox|call of duty|overwatch|league of legends|counter[- ]?strike|cs ?2"
    r"|dust ?2|b site|bomb ?site|defuse"
    r"|dota|elden ring|dark souls|bloodborne|sekiro|skyrim|zelda|pokemon|gta|red dead|halo"
    r"|destiny 2?|rainbow six|tarkov|dead by daylight|battlefield|fallout|cyberpunk|the sims"
    r"|hitman 3|dishonored|assassin'?s creed|splatoon|smash bros|mortal kombat|tekken"
    r"|street fighter|terraria|stardew|baldur'?s gate|diablo|world of warcraft|wow raid"
    r"|respawn|pvp|pve|battle royale)\b"
)
# Food in the six languages: what a kitchen kills, cuts and cooks. Words that are also idioms or
# slang ("dead meat", "sleep with the fishes", "beef", "break his ribs") are only objects
# (`_FOOD_OBJECT`), never cues.
_FOOD = (
    r"\b(?:lobsters?|crabs?|crayfish|prawns?|shrimps?|oysters?|mussels?|clams?|octopus|squid"
    r"|chickens?|hens?|roosters?|ducks?|geese|goose|quails?|rabbits?|lamb|goats?|trout|salmon"
    r"|carp|eels?|catfish|onions?|garlic|shallots?|potato(?:es)?|carrots?|tomato(?:es)?|dough"
    r"|egg whites|brisket|homards?|langoustes?|langostas?|pulpo|pollos?|gallinas?|cebollas?|ajos?"
    r"|pescados?|conejos?|poulets?|oignons?|ail|poissons?|lapins?|hummer|hahnchen|huhn|huhner"
    r"|zwiebeln?|knoblauch|fisch|kaninchen|lagostas?|polvo|frangos?|cebolas?|alho|peixes?"
    r"|aragostas?|polpo|pollo|cipolle?|aglio|pesce|coniglio"
    r"|cakes?|cupcakes?|brownies?|cookies?|chocolate|desserts?|pastry|pastries|tortas?|tartas?"
    r"|postres?|gateaux?|chocolat|kuchen|torten?|schokolade|bolos?|chocolate|dolces?|dolci"
    r"|cioccolato)\b"
)
_FOOD_EXTRA = r"\b(?:fish|meat|steaks?|pork|beef|ribs|eggs?|breasts?|thighs?|wings?|fillets?)\b"
# Cooking: a kitchen's verb on food ("butcher a whole chicken", "murder the onions", "tuer un
# homard"), or cooking words and food within a sentence of each other.
_PREP_VERB = (
    r"\b(?:kill(?:ing)?|murder(?:ing)?|butcher(?:ing)?|slaughter(?:ing)?|fillet(?:ing)?|debone"
    r"|gut(?:ting)?|pluck(?:ing)?|smash(?:ing)?|beat(?:ing)?|chop(?:ping)?|dice|mince|crush(?:ing)?"
    r"|stun(?:ning)?|tuer|abattre|decouper|matar|mato|despiezar|trocear|toten|tote|schlachten"
    r"|zerlegen|uccidere|uccido|ammazzare|abater"
    # Tenderising, in words no one uses for hitting a person ("bater", "pound" are not).
    r"|tenderi[sz](?:e|ing)|amaciar|ablandar|attendrir)\b"
)
_COOK_WORD = (
    r"\b(?:recipes?|cook(?:ing)?|bake|baking|roast(?:ing)?|grill(?:ing)?|fry(?:ing)?|frying pan"
    r"|saute|simmer|marinate|braise|boil(?:ing)?|oven|skillet|schnitzel|stew|receta|cocinar"
    r"|hervir|hirviendo|recette|cuire|cuisiner|cuisson|rezept|kochen|koche|braten|receita"
    r"|cozinhar|ferver|ricetta|cucinare|cuocere|bollire)\b"
)
# Pests and game in the six languages: what pest control and hunting kill. No pets.
_PEST_OR_GAME = (
    r"\b(?:rats?|mice|mouse|rodents?|cockroach(?:es)?|roaches|bed ?bugs?|wasps?|hornets?"
    r"|termites?|moles?|fleas?|ticks|lice|ants|slugs|weevils|silverfish|boars?|wild boars?|deer"
    r"|elk|moose|pheasants?|venison|ratas?|ratones?|cucarachas?|chinches|avispas?|termitas"
    r"|pulgas?|jabali(?:es)?|ciervos?|souris|cafards?|punaises?(?: de lit)?|guepes?|frelons?"
    r"|puces|sangliers?|chevreuils?|cerfs?|ratten|mause|kakerlaken|schaben|bettwanzen|wespen"
    r"|hornissen|flohe|wildschweine?|rehe?|hirsche?|ratos?|baratas?|percevejos?|vespas?"
    r"|javalis?|veados?|ratti|topi|scarafaggi|blatte|cimici|zanzare|cinghial[ei]|cervi|caprioli)\b"
)
_ANIMAL_VERB = (
    r"\b(?:kill(?:ing)?|get rid of|exterminat(?:e|ing)|eliminat(?:e|ing)|trap(?:ping)?"
    r"|shoot(?:ing)?|hunt(?:ing)?|field dress(?:ing)?|matar|exterminar|eliminar|cazar|tuer"
    r"|exterminer|eliminer|chasser|se debarrasser (?:des|du|de la)|toten|bekampfen|loswerden"
    r"|erlegen|schiessen|jagen|sterminare|eliminare|uccidere|cacciare|liberarmi (?:dei|delle)"
    r"|cacar|livrar-me (?:dos|das))\b"
)
_HUNT_OR_PEST_WORD = (
    r"\b(?:hunt(?:ing|er|ers)?|calibre|caliber|rifle|field dress(?:ing)?|pest control"
    r"|exterminators?|infestation|infested|traps?|attic|humanely|caza|cazador|calibre"
    r"|plaga|chasse|chasseur|calibre|nuisibles|jagd|jager|kaliber|aufbrechen|schadlinge?"
    r"|befall|kammerjager|caccia|cacciatore|calibro|disinfestazione|infestazione|caca"
    r"|cacador|calibre|praga)\b"
)
_SELF_DEFENCE = (
    r"\b(?:self[- ]?defen[cs]e|defend (?:myself|herself|yourself|ourselves)|break free"
    r"|(?:get|break) away from (?:an? |the |my )?(?:attacker|mugger|assailant)"
    r"|an? (?:attacker|mugger|assailant)|if (?:someone|somebody|a man|a guy|a stranger) "
    r"(?:grabs|attacks|jumps|corners|follows|chokes) me|defensa personal|defenderme"
    r"|autodefense|me defendre|selbstverteidigung|mich (?:zu )?(?:verteidigen|wehren)"
    r"|defesa pessoal|me defender|autodifesa|difesa personale|difendermi"
    r"|se (?:alguem|alguien) me (?:agarrar|agarra|atacar|ataca)"
    r"|si (?:alguien|quelqu'un) (?:me )?(?:agarra|ataca|m'attaque|me saisit)"
    r"|wenn mich (?:jemand|einer) (?:packt|angreift|festhalt)"
    r"|se qualcuno mi (?:afferra|aggredisce|attacca))\b"
)
# Cues per intent, on normalised text (lower case, no accents). Checked in this order.
_CUES: dict[Intent, re.Pattern[str]] = {
    Intent.HELP_SEEKING: re.compile(
        r"\b(?:(?:is there|are there|give me|what is|what's|whats) (?:a |an |any )?"
        r"(?:number|numbers|hotline|helpline|crisis line|line) (?:i can |to )?(?:call|text|ring)"
        r"|(?:what|which) (?:number|numbers|line) (?:can|do|should|could) (?:i|you|we|one|someone)"
        r" (?:call|text|ring)"
        r"|who (?:can|should|do) i (?:talk|speak|turn|reach out) to|someone to talk to"
        r"|(?:hotline|helpline|crisis line|samaritans|therapist|counsell?or)"
        r"|how (?:do|can|should) i (?:help|support|be there for) (?:him|her|them|my \w{1,30})"
        r"|what do i do|what (?:should|do|can) i (?:say|not say|tell (?:him|her|them))"
        r"|como (?:puedo )?apoyar(?:le|la|lo)?|comment (?:je peux )?(?:la |le )?soutenir"
        r"|wie kann ich (?:ihr|ihm|ihnen) (?:helfen|beistehen)|como (?:posso )?apoia-l[oa]"
        r"|come (?:posso )?(?:aiutarl[oa]|sostenerl[oa]|stargli vicino|starle vicino)"
        r"|(?:call|calling) (?:an ambulance|911|999|112|the emergency)"
        r"|warning signs|i need help|how do i stop (?:myself|thinking|these)"
        # "Warning signs" and "how do I tell whether someone is..." in the other languages.
        r"|(?:woran|wie) erkenne ich,? ob|anzeichen (?:dafur|fur|dass)|warnsignale"
        r"|senales de (?:alerta|alarma|que)|(?:signes|signaux) (?:d'alerte|d'alarme|que)"
        r"|signes avant-coureurs|warnzeichen|segnali (?:d'allarme|di allarme|che)"
        r"|campanelli d'allarme|sinais de (?:alerta|alarme|que)"
        r"|como (?:se )?(?:si|se) (?:alguien|alguem|un amigo|um amigo)"
        r"|come capire se (?:qualcuno|un amico|un'amica)|comment savoir si (?:quelqu'un|un ami)"
        r"|con quien (?:puedo )?hablar|a quien (?:puedo )?(?:llamar|acudir)|necesito ayuda"
        r"|comment (?:je peux |puis-je |l')?(?:l'|la |le )?aider|a qui (?:parler|en parler)"
        r"|j'ai besoin d'aide|was kann ich (?:stattdessen )?(?:machen|tun)|ich brauche hilfe"
        r"|an wen kann ich mich wenden|com quem (?:posso )?falar|preciso de ajuda"
        r"|(?:vorrei )?parlare con qualcuno|ci sono numeri|ho bisogno di aiuto"
        r"|numero (?:de|di) (?:ayuda|aiuto|ajuda|telefono amico)"
        # "I don't know what to do", "how do I stand by her", in the other languages.
        r"|no se (?:que hacer|como ayudar)|je ne sais (?:pas )?(?:quoi faire|comment l'aider)"
        r"|ich weiss nicht,? (?:was ich tun soll|wie ich (?:ihr|ihm) helfen)"
        r"|nao sei (?:o que fazer|como ajudar)|non so (?:cosa fare|come aiutarl[oa])"
        r"|como (?:puedo )?(?:ayudarl[aeo]|acompanarl[aeo]|la acompano|lo acompano)"
        r"|comment (?:je peux )?l'accompagner|como (?:posso )?ajuda-l[oa]"
        rf"|{support.HELP_CUES_MORE_LANGUAGES})\b"
    ),
    Intent.REPORTING: re.compile(
        r"\b(?:how (?:do|can|should|would) (?:i|we) (?:report|flag|escalate|block)"
        r"|how to (?:report|escalate)|(?:should|do|can|must) (?:i|we) (?:report|escalate|go to the"
        r" police|call the police|contact the police)|report (?:it|this|him|her|them|that)\b"
        r"|keep (?:the )?evidence|trust (?:&|and) safety|(?:is|was) (?:this|that|it) (?:a crime"
        r"|illegal|harassment|grooming|a threat|hate speech|a violation)"
        r"|sitewide violation|(?:como|donde) (?:lo |la )?denuncio|denunciar(?:lo|la)?\b"
        # A survivor asking about the law: "is it too late to press charges".
        r"|press(?:ing)? charges|statute of limitations|(?:too late|still possible) to report"
        r"|comment (?:je )?(?:signale|signaler)|porter plainte|muss ich (?:das|es|ihn|sie) "
        r"(?:\w{1,30} )?melden|(?:ist|war) das strafbar|anzeige erstatten|como (?:eu )?denuncio"
        r"|isso e crime|come (?:faccio|posso fare) (?:la )?denuncia|segnalar(?:e|lo|la)\b"
        # A moderator weighing a quoted word: "whether 'kys' should be auto-banned".
        r"|(?:whether|if|should) ['\"][\w' -]{1,30}['\"] (?:\w{1,30} ){0,3}(?:be )?(?:auto-?)?"
        r"(?:banned|filtered|blocked|allowed|moderated|removed)\b)"
    ),
    Intent.CHILD_SAFETY: re.compile(
        r"\b(?:(?:my|our) (?:\d{1,2} ?(?:yo|year old) )?(?:daughter|son|kids?|children|child"
        r"|teen|teenager|\d{1,2} ?yo|pupils|students)\b.{0,100}?\b(?:how do i|what do i|should i"
        r"|is (?:that|this|it)|how (?:can|to)|i should worry)|(?:signs?|tactics|warning signs) "
        r"(?:that |of |suggest |to (?:look|watch) )|what to look out for|look(?:ing)? out for"
        r"|protect (?:my|our|the) (?:kids?|child|children|daughter|son|students|pupils)"
        r"|talk to my (?:teen|teenager|kids?|son|daughter|child)"
        r"|i'?m a (?:\w{1,30} ){0,2}(?:teacher|parent|school counsell?or)"
        r"|as a (?:parent|teacher|mum|mom|dad)|parental controls?"
        r"|mi hij[oa]|mis hij[oa]s|ma fille|mon fils|meine? (?:tochter|sohn|kinder?)|minha filha"
        r"|meu filho|mia figlia|mio figlio)\b"
    ),
    Intent.OWN_SAFETY: re.compile(
        r"\b(?:on|in|from|to) my (?:own )?(?:phone|iphone|laptop|computer|pc|account|accounts"
        r"|device|network|router|app|site|website|server)\b"
        r"|\bmy own (?:\w{1,30} )?(?:phone|laptop|computer|account|app|vm|device|server)\b"
        r"|\bscam(?=\?)|\b(?:is (?:this|it|that) a scam"
        r"|how (?:do|can) i (?:tell|check|know|see|find out) if|how (?:do|can) i tell$"
        r"|how (?:do|can) i (?:tell|check|scan|search) my (?:phone|iphone|android|laptop|computer"
        r"|car|account)|(?:keeps?|is) (?:tracking|following|stalking|watching) (?:me|my)"
        r"|(?:protect|secure|lock down) my|am i being (?:tracked|followed|watched)"
        r"|(?:turn on|enable|set up|activate|switch on) (?:two-factor|2fa|two-step|mfa"
        r"|multi-factor)|so (?:that )?my (?:\w{1,30} )?(?:accounts?|phone|email) (?:doesn'?t"
        r"|does not|won'?t|can'?t|never) get (?:hacked|stolen|taken over)"
        r"|how (?:do|can) i (?:recogni[sz]e|spot)|como (?:reconozco|reconheco)"
        r"|comment reconnaitre|wie erkenne ich|come riconosco"
        r"|es (?:esto|una) estafa|c'est une arnaque|ist das (?:ein )?betrug"
        r"|e golpe|e una truffa"
        # One's own device in the other languages, and finding out whether it is watched.
        r"|(?:auf|in) meinem (?:handy|telefon|smartphone|laptop|computer|rechner|konto|auto)"
        r"|wie finde ich heraus,? ob|en mi (?:telefono|movil|celular|ordenador|computadora"
        r"|cuenta|coche)|como (?:puedo )?saber si|sur mon (?:telephone|portable|ordinateur"
        r"|compte|smartphone)|comment (?:savoir|verifier) si|no meu (?:celular|telefone"
        r"|computador|carro)|como (?:posso )?saber se|sul mio (?:telefono|cellulare|computer"
        r"|account|smartphone)|come (?:faccio a )?(?:sapere|capire|scoprire) se"
        # One's own organisation's security: a test of one's own staff or systems.
        r"|(?:our|my) own (?:staff|employees|team|users|company|organi[sz]ation|network"
        r"|systems?|infrastructure|domain)|phishing (?:simulation|awareness|training|test)s?"
        r"|penetration test\w{0,3}|pentest\w{0,3}|authori[sz]ed (?:test|pentest|engagement|scan)"
        r"|security awareness)\b"
    ),
    Intent.EDUCATION: re.compile(
        r"\b(?:for (?:a|my|our|the) (?:history |school |uni |university |class )?(?:essay|lesson"
        r"|lecture|class|presentation|report|unit|course|exam|homework|assignment|training)"
        r"|teaching (?:a|my|the) |(?:in|for) history|security training|(?:preparing|giving"
        r"|planning) an? (?:\w{1,30} ){0,2}(?:lecture|lesson|class|talk|training|presentation"
        r"|workshop)|history (?:essay|class|lesson)"
        r"|why did .{1,60}? happen|how did .{1,60}? use|what role did|school never"
        r"|(?:explain|teach) (?:to )?(?:my |an? )?(?:\d{1,2} ?year old|kids|children|students"
        r"|pupils)|age appropriate|sex ed(?:ucation)?"
        r"|(?:fur|fuer) (?:ein|das|mein|die|eine) (?:referat|schule|hausarbeit|prasentation"
        r"|unterricht)|im (?:geschichts)?unterricht|para (?:un|una|el|mi|o|a) (?:trabajo|examen"
        r"|clase|ensayo|presentacion|escola|escuela)|pour (?:un|une|mon|ma) (?:expose|devoir"
        r"|cours|presentation)|per (?:una|un|la) (?:tesina|ricerca|lezione|presentazione)"
        # A question about past events: how many died, who was convicted.
        r"|how many (?:\w{1,30} ){0,2}(?:died|were killed|were murdered|perished|lost their lives"
        r"|were deported)|who was (?:convicted|sentenced|responsible|tried)"
        r"|war crimes? (?:trial|tribunal)"
        r"|cuantas (?:personas|victimas) (?:murieron|fueron asesinadas|fallecieron)"
        r"|combien de (?:personnes|gens|victimes) (?:sont mortes|ont ete tuees|ont peri)"
        r"|combien de morts|wie viele (?:menschen|personen|opfer|tote) (?:wurden|sind|starben"
        r"|kamen|gab es)|wer wurde (?:dafur |dafuer )?verurteilt"
        r"|quantas (?:pessoas|vitimas) (?:morreram|foram mortas)"
        r"|quante (?:persone|vittime) (?:sono morte|morirono|furono uccise)"
        # Sexual health.
        r"|condoms?|contracepti\w{1,5}|birth control|morning after pill|safer? sex|stis?|stds?"
        r"|condon(?:es)?|anticonceptiv\w{1,3}|preservatifs?|kondome?|verhutung\w{0,2}"
        r"|camisinhas?|anticoncepciona\w{1,3}|preservativ[oi]s?|contraccett\w{1,3})\b"
    ),
    Intent.FICTION: re.compile(
        r"\b(?:(?:writing|write|help me write|need) (?:me )?(?:a|an|my) (?:short |campfire "
        r"|spooky |fade-to-black |fade to black |romance |war |horror |crime |mystery |detective "
        r"|murder |fantasy |sci-fi |science fiction |historical |noir |spy |heist |ya |kids "
        r"|children's |bedtime |funny ){0,2}(?:story|novel|poem|thriller|mystery|whodunn?it|scene"
        r"|screenplay|script|chapter|ghost story)|my (?:protagonist|antagonist|detective"
        r"|main character|villain)"
        r"|red herrings?|plot twists?|fade[- ]to[- ]black|keep it tasteful"
        r"|(?:no|without) (?:blood|gore)|not graphic"
        # A murder-mystery party or game is a story the guests play.
        r"|murder mystery (?:party|game|dinner|night|evening)"
        # "I am writing a novel" and "for a crime novel", crime novels by their names.
        r"|(?:j'ecris|ecris) un (?:roman|livre|recit|polar)"
        r"|ich schreibe (?:einen|eine|an einem|an meinem) (?:roman|geschichte|krimi|thriller)"
        r"|estoy escribiendo una? (?:novela|historia|relato)"
        r"|sto scrivendo un (?:romanzo|racconto|giallo|thriller|noir)"
        r"|estou escrevendo um (?:romance|livro|conto)"
        r"|pour (?:un|mon) (?:polar|roman policier)|fur (?:einen|meinen) krimi"
        r"|para (?:una|mi) novela negra|per (?:un|il mio) (?:giallo|romanzo giallo|noir)"
        r"|para (?:um|o meu) romance policial)\b"
    ),
    Intent.GAMING: re.compile(
        # "boss" after a possessive is a person's boss, not a game's.
        r"\b(?:(?<!my )(?<!your )(?<!his )(?<!her )(?<!our )(?<!their )(?<!the )boss|bosses"
        r"|summons?|respawn|pvp|pve|raid|dungeon|level \d{1,3}|headshots?"
        r"|elden ring|dark souls|malenia|valorant|fortnite|minecraft|roblox|call of duty|cod"
        r"|mortal kombat|combos?|overwatch|league of legends|counter[- ]?strike|cs ?2|gta|zelda"
        r"|pokemon|skyrim|the game|this game|in game|in-game|match report|6-0|\d-\d (?:win|loss"
        r"|last night)|loadouts?|campers|squads?|killstreaks?|lobby|npcs?|speedrun)\b"
        r"|" + _NAMED_GAME
    ),
    Intent.COOKING: re.compile(
        rf"{_PREP_VERB} (?:[\w'-]{{1,30}} ){{0,3}}?{_FOOD}|{_COOK_WORD}.{{0,100}}?{_FOOD}"
        rf"|{_FOOD}.{{0,100}}?{_COOK_WORD}"
    ),
    Intent.SELF_DEFENCE: re.compile(_SELF_DEFENCE),
    Intent.PRODUCTION: re.compile(
        r"\b(?:sfx|special effects|practical effects|fake blood|stage blood|movie blood"
        r"|(?:sfx |special effects |halloween |stage |theatre |theater |film )make-?up"
        r"|prosthetics?|liquid latex|scar wax|prop (?:knife|knives|blood|weapon|wound)s?"
        # Making a film, not watching one: "a horror short", "short film", never "horror movie".
        r"|(?:horror|student|indie) short|short film|student film|filmmakers?|film shoot"
        r"|on camera|cosplay|haunted house|stage combat|sangre falsa|efectos especiales"
        r"|faux sang|effets speciaux|kunstblut|spezialeffekte|sangue finto|effetti speciali"
        r"|sangue falso|efeitos especiais)\b"
    ),
    Intent.ANIMALS: re.compile(
        rf"{_ANIMAL_VERB} (?:[\w'-]{{1,30}} ){{0,3}}?{_PEST_OR_GAME}"
        rf"|{_HUNT_OR_PEST_WORD}.{{0,100}}?{_PEST_OR_GAME}|{_PEST_OR_GAME}.{{0,100}}?"
        rf"{_HUNT_OR_PEST_WORD}"
    ),
    Intent.ABOUT_ONESELF: re.compile(
        r"\b(?:roast me(?! (?:a|an|some|the|that|this|my|your)\b)"
        r"|(?:insult|mock|make fun of|tear|rip) me(?: apart)?"
        r"|(?:roast|destroy|insult) my (?:life|look|looks|outfit|setup|room|photo|pic|selfie|code"
        r"|resume|cv)|clasheame|roastea?me|roaste-moi|clashe-moi|disse mich|beleidige mich)\b"
    ),
}

# An operational ask: how to make, get or do the harm, quantities, evasion, a request for
# material, and outside quotes a first-person threat. Quotes are left in for the asks ("how do
# i report: 'tell me how to make meth'" keeps its block) and taken out for the threat (a
# quoted threat is the report).
_HOW = (
    r"(?:how (?:do|can|could|would|should|to) (?:i |you |we |one )?|ways? to |best way to "
    r"|easiest way to |teach me (?:how )?to |show me how to |help me |explain how to )"
)
# A part of a story: what a writer makes or builds is no object.
_STORY_PART = (
    r"(?:(?:his|her|their|the|my|this|a|an) (?:\w{1,20} )?(?:motives?|characters?|villains?"
    r"|backstory|dialogue|plot|scenes?|ending|twists?|arc|personality|suspects?|alibis?"
    r"|red herrings?|chapters?)\b(?!'?s\b))"
)
# Asks to make something, and for its recipe and quantities: in a kitchen, that is cooking (a
# kitchen never lowers weapons or drugs, so a bomb's recipe keeps its block by its category).
_MAKING = re.compile(
    # "Help me make his motive believable": a story's part is no thing made.
    rf"\b(?:{_HOW}(?:(?:make|build|create)(?! {_STORY_PART})|synthesi[sz]e|cook|brew|produce"
    r"|manufacture|assemble|3d print)\b|step[- ]by[- ]step|detailed (?:instructions|guide|steps)"
    r"|instructions (?:for|to|on)|recipe for|ingredients for|exact (?:amounts?|quantit\w{1,4}"
    r"|measurements|ratios?|ingredients|grams|steps)|(?:grams|ml|mg|amounts?) of each"
    r"|(?:amounts?|quantities) in (?:grams|ml|mg)|how (?:much|many) of each"
    r"|(?:real|actual|exact) (?:steps|recipe|method|process|procedure)"
    r"|how (?:he|she|they|you|i) (?:wires?|mix(?:es)?|assembles?|builds?|makes?|cooks?)"
    r"|como (?:hacer|fabricar)|paso a paso|comment (?:fabriquer|faire) (?:une?|du|de la)"
    r"|etape par etape|wie (?:baue|mache) ich|schritt fur schritt|como (?:fazer|fabricar)"
    r"|passo a passo|come (?:fare|fabbricare|costruire)|passo per passo)\b"
)
# Asks not to be caught: in a named game, how the game is played.
_EVADING = re.compile(
    r"\b(?:without (?:getting caught|being (?:caught|detected|traced|noticed)|leaving (?:a )?trace"
    r"|them knowing|anyone knowing)|undetectable|untraceable)\b"
)
_TERMS = load_terms()
_OPERATIONAL = re.compile(
    rf"\b(?:{_HOW}"
    r"(?:get (?:hold of|my hands on)|buy|obtain|acquire|order|source|smuggle|install (?:spyware"
    r"|a keylogger|stalkerware|a tracker) on|hack into|break into|spy on|track (?:my|her|his"
    r"|someone|a)|find (?:out )?where|poison|stab|shoot (?:up|someone|a person)|hurt|strangle"
    r"|kidnap|groom|lure|blackmail|extort|launder|steal|skim|phish|dox)\b"
    r"|exact (?:doses?|drugs?|chemicals|reagents|materials|components)"
    r"|keep (?:\w{1,30} ){0,2}secret from"
    # Into another person's account: no protective cue ("then enable 2fa") makes it one's own.
    # The same owners and accounts as the privacy patterns' (patterns.json's terms).
    rf"|(?:get|log|sign) ?(?:in|into) (?:to )?{_TERMS['OTHERS']} {_TERMS['ACCOUNT']}"
    r"|describe (?:everything|every (?:detail|second|moment)|it all|all of it"
    r"|in (?:full |graphic |gory )?detail)"
    r"|(?:all|every) (?:the )?(?:gory |graphic |bloody )?details"
    r"|all the (?:gore|blood)"
    # The gore itself is what is asked for, whatever the story around it.
    r"|as (?:graphic|gory|gruesome|bloody|gross|brutal|disgusting|sickening) as (?:possible|you can"
    r"|u can|it gets)"
    r"|(?:lethal|fatal|deadly) (?:dose|amount|quantity)|dosis letal|dose (?:letale|letal|mortelle)"
    r"|todliche dosis|real quantities|real amounts"
    # The doses or amounts asked for, in the five other languages ("realistic, with dosage").
    r"|(?:with|mit|con|avec|com) (?:the |der |la |le |il |a )?(?:dosage|dosierung|dosis"
    r"|dosificacion|dosaggio|dosagem|doses|dosi|mengenangaben)"
    r"|(?:genaue|exakte) (?:dosis|dosierung|mengen)|dos(?:is|es|i) exact(?:as|es|e|a)s?"
    r"|dosaggio esatto|dosage exact|dosagem exata"
    r"|how (?:much|many) (?:\w{1,30} ){0,2}(?:to kill|would kill|is lethal|to die|to overdose)"
    r"|where (?:can|do|could) i (?:buy|get|find|download|order|watch) "
    r"|(?:send|share|give|sell|trade|post) (?:me|us) (?:\w{1,30} )?(?:nudes?|pics|photos|videos"
    r"|links?|material|content)"
    r"|write (?:me )?(?:a |an |the )?(?:code|script|program|malware|keylogger|ransomware|virus"
    r"|phishing (?:email|page|site)|exploit)"
    r"|in (?:graphic|explicit|gory|vivid) detail|explicit(?:ly)? (?:sex|sexual)"
    r"|como (?:conseguir|comprar)|comment (?:obtenir|acheter) (?:une?|du|de la)"
    r"|wie (?:bekomme|kaufe) ich|como (?:comprar|conseguir)|come (?:comprare|procurarsi))\b"
)
# Asking how to harm someone: operational, except in a game, where killing is a move.
_DO_HARM = re.compile(
    r"\b(?:how (?:do|can|could|would|should|to) (?:i |you |we |one )?|ways? to |best way to "
    r"|easiest way to |teach me (?:how )?to |help me )(?:kill|murder|beat up|take out|destroy"
    r"|get rid of|knock out|shoot|headshot)\b"
)
# In a kitchen, killing food is cooking: what a harm verb does to, read right after it.
_FOOD_OBJECT = re.compile(rf" (?:[\w'-]{{1,30}} ){{0,3}}?(?:{_FOOD}|{_FOOD_EXTRA})")
_ANIMAL_OBJECT = re.compile(rf" (?:[\w'-]{{1,30}} ){{0,3}}?{_PEST_OR_GAME}")
_HARM_VERB = (
    r"(?:kill(?:ing)?|murder(?:ing)?|shoot(?:ing)?|snipe|sniping|stab(?:bing)?|poison(?:ing)?"
    r"|strangl(?:e|ing)|hurt(?:ing)?|beat(?:ing)? up|take out|get rid of|attack(?:ing)?"
    r"|butcher(?:ing)?|slaughter(?:ing)?|chop(?:ping)? up|cook(?:ing)?|behead(?:ing)?"
    r"|drown(?:ing)?|burn(?:ing)?|skin(?:ning)?)"
)
# A real person harmed: never a game's move nor a kitchen's. "My brother", "a real person",
# "in real life"; in a kitchen, any person ("him", "someone", "a man").
_REAL_PERSON = re.compile(
    rf"\b{_HARM_VERB} (?:\w{{1,30}} )?(?:my|his|her|your|their|our) (?:\w{{1,30}} )?"
    r"(?:wife|husband|boyfriend|girlfriend|bf|gf|ex|partner|brother|sister|mom|mum|mother|dad"
    r"|father|parents|son|daughter|baby|boss|teacher|coworker|co-worker|colleague|classmate"
    r"|neighbou?r|roommate|landlord|uncle|aunt|cousin|grandma|grandpa|grandmother"
    r"|grandfather|stepdad|stepmom|family|in-laws?|kids?|children)\b"
    r"|\b(?:irl|in real life|real (?:person|people|human|humans))\b"
)
_ANY_PERSON = re.compile(
    rf"\b{_HARM_VERB} (?:\w{{1,30}} )?(?:you|u|him|her|them|someone|somebody|anyone|people"
    r"|(?:a|an|the|that) (?:\w{1,30} )?(?:person|man|woman|child|kid|baby|boy|girl|guy|human"
    r"|cop|officer|body|bodies|corpse))\b"
)
# What no recipe asks for: poisons, weapons, drugs, a dish for someone who must not notice.
_KITCHEN_HARM = re.compile(
    r"\b(?:poison(?:ous|ed|ing)?|cyanide|arsenic|ricin|antifreeze|rat poison|hemlock|oleander"
    r"|nightshade|ground glass|human (?:flesh|meat)|cannibal\w{0,5}|bombs?|explosives?|napalm"
    r"|thermite|molotov|grenades?|ieds?|detonators?|gunpowder|black powder|guns?|firearms?"
    r"|ammo|ammunition|silencers?|nerve agents?|sarin|(?:chlorine|mustard|toxic) gas|meth"
    r"|cocaine|heroin|fentanyl|lsd|mdma|ghb|roofies|rohypnol|spike (?:his|her|their) "
    r"(?:food|drink|dinner)|slip (?:it|something|this|that) into|without (?:him|her|them)"
    r" (?:noticing|tasting|knowing))\b"
)
# What no pest control or hunt needs: explosives, poison gas, a person's drink.
_FIELD_HARM = re.compile(
    r"\b(?:bombs?|explosives?|napalm|thermite|molotov|grenades?|ieds?|detonators?|dynamite"
    r"|nerve agents?|sarin|(?:chlorine|mustard|toxic|poison) gas|ricin|anthrax|spike (?:his|her"
    r"|their) (?:food|drink|dinner)|without (?:him|her|them) (?:noticing|tasting|knowing))\b"
)
_THREAT = re.compile(
    r"\b(?:(?:i|we)(?: will|'ll| am going to|'m going to| m going to| am gonna|'m gonna"
    r"| plan to| am about to|'m about to)|gonna|going to|wanna|want to) (?:\w{1,30} )?"
    r"(?:kill|murder|shoot|stab|hurt|rape|beat|bomb|burn|poison|find|destroy|leak|expose|dox) "
    r"(?:you|u|him|her|them|his|their|my (?:ex|boss|teacher|neighbou?r|wife|husband))\b"
    # The same, in the five other languages (normalised: no accents).
    r"|\b(?:(?:te|lo|la|los|las|les) (?:voy|vamos) a|voy a|vamos a) (?:matar|apunalar|disparar"
    r"|violar|quemar|reventar)(?:te|lo|la|los|las)?\b|\bte mato\b"
    r"|\bje vais (?:te|le|la|les|vous) (?:tuer|buter|poignarder|violer|cramer|defoncer)\b"
    r"|\bje (?:te|vous) (?:tue|bute)\b"
    r"|\bich (?:werde|will) (?:dich|ihn|sie|euch) (?:\w{1,30} )?(?:umbringen|toten|abstechen"
    r"|erschiessen|vergewaltigen|abknallen)\b|\bich (?:bring|bringe|stech|steche|knall|knalle)"
    r" (?:dich|ihn|sie|euch) (?:um|ab)\b"
    r"|\b(?:vou|vamos) (?:te |o |a )?(?:matar|esfaquear|estuprar|queimar)(?:-te|-lo|-la)?\b"
    r"|\b(?:eu )?te mato\b"
    r"|\b(?:ti|vi|lo|la) (?:ammazzo|uccido|accoltello|ammazzero|uccidero)\b|\bti faccio fuori\b"
)
# A quote; an apostrophe inside a word ("i'm") does not end a single-quoted one.
_QUOTE = re.compile(
    r"'(?:[^'\n]|'(?=\w)){1,300}?'(?!\w)|\"[^\"\n]{1,300}\""
    r"|[\u201c\u201e\u00ab][^\n]{1,300}?[\u201d\u00bb]"
)


# Intents about something other than a person: a story, a game, a lesson, a kitchen. With one
# of them, harassment of someone the writer knows ("a poem calling my sister a pig", "my
# coworker in a story") is still harassment.
_NOT_ABOUT_PEOPLE = frozenset(
    {
        Intent.EDUCATION,
        Intent.FICTION,
        Intent.GAMING,
        Intent.COOKING,
        Intent.PRODUCTION,
        Intent.ANIMALS,
        Intent.ABOUT_ONESELF,
    }
)
_HARASSMENT = frozenset({_C.HARASSMENT.value, _C.HARASSMENT_THREATENING.value})
_KNOWN_PERSON = re.compile(
    r"\b(?:my|our) (?:\w{1,30} ){0,2}(?:wife|husband|boyfriend|girlfriend|ex|partner|brother|sister"
    r"|mom|mum|mother|dad|father|son|daughter|boss|teacher|coworker|co-worker|colleague"
    r"|classmates?|neighbou?rs?|roommate|landlord|uncle|aunt|cousin|friends?|stepdad|stepmom"
    r"|manager|student|teammates?)\b"
)


def intent_of(normalized: str) -> list[Intent]:
    """The protective intents `normalized` shows a cue of, in `Intent`'s order."""
    helped = support.without_refused_help(normalized)
    return [
        intent
        for intent, cue in _CUES.items()
        if cue.search(helped if intent is Intent.HELP_SEEKING else normalized)
    ]


def operational_ask(
    normalized: str, *, in_game: bool = False, in_kitchen: bool = False, in_field: bool = False
) -> bool:
    """Whether `normalized` asks how to make, get or do harm, or threatens outside quotes.
    `in_game`, killing is a move, and with a named game so is not being caught; `in_kitchen`
    (a kitchen, or a film's or stage's effects), making is cooking or crafting and killing food
    is preparing it; `in_field` (pest control, hunting), killing a pest or game is no ask. None
    holds for a real person, nor the kitchen for poisons, weapons or drugs (a recipe for napalm
    is no dish, a prop bomb is a bomb), nor the field for explosives or poison gas."""
    if _OPERATIONAL.search(normalized):
        return True
    if not in_kitchen and _MAKING.search(normalized):
        return True
    if (in_game or in_kitchen or in_field) and _REAL_PERSON.search(normalized):
        return True
    if (in_kitchen or in_field) and _ANY_PERSON.search(normalized):
        return True
    if in_kitchen and _KITCHEN_HARM.search(normalized):
        return True
    if in_field and _FIELD_HARM.search(normalized):
        return True
    named_game = in_game and re.search(_NAMED_GAME, normalized) is not None
    if not named_game and _EVADING.search(normalized):
        return True
    if not in_game and _killing_asked(normalized, in_kitchen=in_kitchen, in_field=in_field):
        return True
    return _THREAT.search(_QUOTE.sub(" ", normalized)) is not None


def _killing_asked(normalized: str, *, in_kitchen: bool, in_field: bool = False) -> bool:
    """Whether `normalized` asks how to kill or hurt; in a kitchen, something other than food;
    in the field, something other than a pest or game."""
    for match in _DO_HARM.finditer(normalized):
        if in_kitchen and _FOOD_OBJECT.match(normalized, match.end()):
            continue
        if in_field and _ANIMAL_OBJECT.match(normalized, match.end()):
            continue
        return True
    return False


def lower(verdict: Verdict, text: str) -> Verdict:
    """`verdict` as a flag when it blocks, `text` shows a protective intent that covers every
    category it names and asks for nothing operational (module docstring); else unchanged."""
    if verdict.action is not Action.BLOCK or not verdict.categories:
        return verdict
    categories = {canonical(c) for c in verdict.categories}
    if Category.SELF_HARM_INSTRUCTIONS.value in categories:
        return verdict
    normalized = normalize(text)
    # For self-harm, a method or an imminent act is the operational ask (moderation/support.py).
    if any(is_self_harm(c) for c in categories) and support.method_or_imminent(normalized):
        return verdict
    covering = [i for i in intent_of(normalized) if categories <= LOWERS[i]]
    if categories & _HARASSMENT and _KNOWN_PERSON.search(normalized):
        covering = [i for i in covering if i not in _NOT_ABOUT_PEOPLE]
    in_game = Intent.GAMING in covering
    in_kitchen = Intent.COOKING in covering or Intent.PRODUCTION in covering
    in_field = Intent.ANIMALS in covering
    if not covering or operational_ask(
        normalized, in_game=in_game, in_kitchen=in_kitchen, in_field=in_field
    ):
        return verdict
    return dataclasses.replace(
        verdict,
        action=Action.FLAG,
        reason=f"{verdict.reason} (protective intent: {covering[0]}; no operational ask: "
        "sent and flagged)"[:500],
    )
