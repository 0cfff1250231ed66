"""A small, dependency-free language guess from stop words (en, fr, de, es, it, pt, nl).

Good enough to route "Bonjour, ma commande n'est pas arrivée" to French-speaking agents;
returns None when the text is too short or ambiguous, and rules with `language` then do
not match (the reason says so).
"""

from __future__ import annotations

from collections.abc import Sequence

STOPWORDS: dict[str, frozenset[str]] = {
    "en": frozenset(
        (
            "the and is are to of my i you it not "
            "for with have this that was what how can do your please"
        ).split()
    ),
    "fr": frozenset(
        (
            "le la les et est un une de des du je vous ma "
            "mon mes pas pour avec que qui ne il elle sur bonjour merci"
        ).split()
    ),
    "de": frozenset(
        (
            "der die das und ist ein eine nicht ich sie "
            "mit mein meine zu von den dem wie bitte danke hallo"
        ).split()
    ),
    "es": frozenset(
        (
            "el la los las y es un una de del no "
            "mi mis por para con que como hola gracias esta pedido"
        ).split()
    ),
    "it": frozenset(
        (
            "il lo la gli le e un una di del non mio mia per con che come ciao grazie sono ordine"
        ).split()
    ),
    "pt": frozenset(
        (
            "o a os as e um uma de do da nao meu minha para com que como ola obrigado pedido voce"
        ).split()
    ),
    "nl": frozenset(
        (
            "de het een en is niet ik u mijn van met voor dat hoe hallo bedankt wij zijn bestelling"
        ).split()
    ),
}
LANGUAGES = frozenset(STOPWORDS)


def detect(words: Sequence[str], min_hits: int = 2) -> str | None:
    """Language code for folded word tokens, or None when unsure."""
    counts = {lang: 0 for lang in STOPWORDS}
    for word in words[:400]:
        for lang, stop in STOPWORDS.items():
            if word in stop:
                counts[lang] += 1
    ranked = sorted(counts.items(), key=lambda kv: kv[1], reverse=True)
    (best, top), (_, second) = ranked[0], ranked[1]
    if top < min_hits or top < second * 1.5 + 0.5:
        return None
    return best
