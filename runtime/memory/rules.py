"""Facts, entities and relations out of English text by fixed rules, no model.

:func:`rule_extract` is the deterministic counterpart of a model answering
:func:`runtime.memory.extract.extraction_request`: the scripted test model answers
extraction requests with it. What it catches and misses is listed on the function.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from runtime.memory.extract import USER, Extraction, Fact, extraction_from_json
from runtime.memory.graph import DEFAULT_TYPE, relation_key
from runtime.memory.records import Entity, Relation, normalise_name

__all__ = ["rule_extract"]

# Sentences are split on . ! ? and line breaks, then into words; "I'm" and "I've" become two
# words. A *name* is a run of capitalised words, joined by lower-case particles between
# capitals ("Bank of America", "Leonardo da Vinci"). A sentence's first word is capitalised
# anyway, so an opener there ("The", "Yesterday", "My") is dropped from a name, and a
# single capitalised first word is only trusted as the subject of a relation.

_TOKEN = re.compile(r"\w+(?:['’-]\w+)*|[^\w\s]")
_SENTENCES = re.compile(r"(?<=[.!?])\s+|\n\s*")
_CONTRACTIONS: Final = {
    "i'm": ("I", "am"),
    "i’m": ("I", "am"),
    "i've": ("I", "have"),
    "i’ve": ("I", "have"),
}
_PARTICLES: Final = frozenset(
    """
    of de da do dos das del della di van von der den du la le y &
    """.split()
)
_OPENERS: Final = frozenset(
    """
    the a an this that these those it he she they we you there here yesterday today
    tomorrow tonight then when if but and or so also my our your his her their its in on
    at after before what where who whom why how which please yes no hi hello hey thanks
    ok okay well oh maybe now last next every some many most all one for from with as
    since although though while because do does did can could would should will is are
    was were let tell remember call note by btw
    """.split()
)
_PRONOUNS: Final = frozenset(
    """
    it him her them this that these those you me us there here what something anything
    nothing everything
    """.split()
)
_ARTICLES: Final = frozenset({"a", "an", "the"})
_ADVERBS: Final = frozenset(
    """
    also still now currently really actually usually always mostly too just already
    """.split()
)
_NEGATIONS: Final = frozenset(
    """
    not never no don't doesn't didn't won't can't cannot don’t doesn’t didn’t isn't
    wasn't aren't
    """.split()
)
_CLAUSE_ENDS: Final = frozenset(
    """
    and but because so which who where when while although though since if then or that
    than until unless whereas
    """.split()
)
_REQUESTS: Final = frozenset(
    """
    please can could would will tell show give find help let what where who how why when
    which do does is are remind explain write make search look check list should shall
    """.split()
)
#: words for people ("name" too: "my name is Ana" makes Ana a person)
_FAMILY: Final = frozenset(
    """
    wife husband partner son daughter mother father mom mum dad brother sister friend
    boss colleague boyfriend girlfriend child kid grandmother grandfather uncle aunt
    cousin name
    """.split()
)
_PETS: Final = frozenset({"dog", "cat", "puppy", "kitten", "horse", "parrot", "rabbit", "pet"})
_ATTRIBUTES: Final = frozenset(
    """
    name age birthday email job hobby nickname surname
    """.split()
)
_MAX_PHRASE = 6

# relation, the target's type, the subject's type, forms ("1:" only after "I", "3:" only
# after a name, else both). Longest form wins: "was born in" before "was".
_VERB_TABLE: Final = (
    ("lives_in", "place", "person", "3:lives in|1:live in|living in"),
    ("lived_in", "place", "person", "lived in"),
    ("moved_to", "place", "person", "moved to|3:is moving to|1:am moving to"),
    ("is_from", "place", "person", "3:is from|1:am from|3:comes from|1:come from|was from"),
    ("born_in", "place", "person", "was born in|3:were born in"),
    ("works_at", "organization", "person", "3:works at|1:work at|worked at"),
    ("works_for", "organization", "person", "3:works for|1:work for|worked for"),
    ("works_as", "role", "person", "3:works as|1:work as|worked as"),
    ("studies_at", "organization", "person", "3:studies at|1:study at|studied at"),
    ("married_to", "person", "person", "3:is married to|1:am married to|was married to"),
    ("is_in", "place", DEFAULT_TYPE, "3:is in|3:are in|3:is located in|3:are located in"),
    ("speaks", "language", "person", "3:speaks|1:speak"),
    ("likes", DEFAULT_TYPE, DEFAULT_TYPE, "3:likes|1:like"),
    ("loves", DEFAULT_TYPE, DEFAULT_TYPE, "3:loves|1:love"),
    ("hates", DEFAULT_TYPE, DEFAULT_TYPE, "3:hates|1:hate"),
    ("prefers", DEFAULT_TYPE, DEFAULT_TYPE, "3:prefers|1:prefer"),
    ("enjoys", DEFAULT_TYPE, DEFAULT_TYPE, "3:enjoys|1:enjoy"),
    ("owns", DEFAULT_TYPE, DEFAULT_TYPE, "3:owns|1:own"),
    ("founded", "organization", "person", "founded"),
    ("name", "person", "person", "1:am called|1:am named|3:is called|3:is named"),
    ("has", DEFAULT_TYPE, DEFAULT_TYPE, "3:has|1:have"),
    ("is", DEFAULT_TYPE, DEFAULT_TYPE, "3:is|1:am|3:are|was|3:were"),
)


@dataclass(frozen=True, slots=True)
class _Verb:
    words: tuple[str, ...]
    relation: str
    target_type: str
    subject_type: str
    person: str  # "1", "3" or "" (either)


def _verbs() -> dict[str, list[_Verb]]:
    index: dict[str, list[_Verb]] = {}
    for relation, target_type, subject_type, forms in _VERB_TABLE:
        for form in forms.split("|"):
            person, _, phrase = form.rpartition(":")
            words = tuple(phrase.split())
            verb = _Verb(words, relation, target_type, subject_type, person)
            index.setdefault(words[0], []).append(verb)
    for verbs in index.values():
        verbs.sort(key=lambda v: -len(v.words))
    return index


_VERBS: Final = _verbs()


@dataclass(frozen=True, slots=True)
class _Name:
    start: int
    end: int  # exclusive
    text: str
    possessive: bool  # "Ana's"
    weak: bool  # a lone capitalised first word: maybe a name, maybe not
    #: it begins a clause, so it can be a subject ("the friend of Ana lives ..." is not
    #: about Ana)
    leads: bool


@dataclass(slots=True)
class _Found:
    """What the rules collect over a text, in order of first mention."""

    facts: dict[str, Fact] = field(default_factory=dict)
    entities: dict[str, Entity] = field(default_factory=dict)
    relations: dict[tuple[str, str, str], Relation] = field(default_factory=dict)

    def entity(self, name: str, kind: str) -> None:
        key = normalise_name(name)
        seen = self.entities.get(key)
        if seen is None:
            self.entities[key] = Entity(name=name, type=kind)
        elif seen.type == DEFAULT_TYPE and kind != DEFAULT_TYPE:
            self.entities[key] = Entity(name=seen.name, type=kind)

    def relation(self, source: str, name: str, target: str) -> None:
        identity = (normalise_name(source), name, normalise_name(target))
        if all(identity) and identity not in self.relations:
            self.relations[identity] = Relation(source=source, relation=name, target=target)


def rule_extract(text: str) -> Extraction:
    """Facts, entities and relations found in ``text`` by fixed English rules, no model.

    Deterministic: the same text always gives the same extraction, in text order.

    It catches:

    - facts: declarative sentences with "I" or "my" ("I live in Lisbon", "My dog is called
      Rex", "Call me Ana"), rewritten in the third person where that is safe ("The user
      lives in Lisbon.", "The user's dog is called Rex.") and kept verbatim otherwise;
      importance from keywords (a name or an allergy 0.9; home, work, family 0.8; tastes
      0.7; else 0.5);
    - entities: runs of capitalised words ("New York City", "Bank of America"), typed
      when a relation says what they are (the target of ``lives_in`` is a place), and
      :data:`USER` when the user is a relation's end;
    - relations: "X lives in / works at / works for / is from / was born in / speaks /
      likes / has / is in / is married to Y", "X is a Y" (``is_a``), "X is the Y of Z"
      (``Y_of``), "X is Y", "X's Y is (called) Z" and "my Y is (called) Z" (``Y``),
      "I have a dog called Rex" (``dog``), "I'm called Ana" and "Call me Ana"
      (``name``), with "I" as :data:`USER` and "X ... and works at Y" sharing X.

    It misses: anything said with pronouns ("she lives in Porto": no antecedents),
    negations (a negated relation is dropped, its sentence kept as a fact), questions
    (no facts or relations), lower-case names, names at the start of a sentence that
    are not a relation's subject, passive and subordinate clauses, sentences split at
    abbreviations ("Dr. Smith"), "we", and every language but English.
    """
    found = _Found()
    for sentence in _SENTENCES.split(text):
        words = _words(sentence)
        if not words:
            continue
        question = words[-1] == "?"
        names = _names(words)
        for name in names:
            if not name.weak:
                found.entity(name.text, DEFAULT_TYPE)
        if question:
            continue
        _relations_in(words, names, found)
        fact = _fact(sentence.strip(), words)
        if fact is not None and fact.text.casefold() not in found.facts:
            found.facts[fact.text.casefold()] = fact
    # Read back as a model's reply is read (spaces, lengths, caps): both give the same.
    return extraction_from_json(
        {
            "facts": [{"text": f.text, "importance": f.importance} for f in found.facts.values()],
            "entities": [{"name": e.name, "type": e.type} for e in found.entities.values()],
            "relations": [
                {"source": r.source, "relation": r.relation, "target": r.target}
                for r in found.relations.values()
            ],
        }
    )


def _words(sentence: str) -> list[str]:
    words: list[str] = []
    for token in _TOKEN.findall(sentence):
        words.extend(_CONTRACTIONS.get(token.casefold(), (token,)))
    return words


def _capital(word: str) -> bool:
    return word[0].isupper() and word[0].isalpha() and word != "I"


def _possessive(word: str) -> bool:
    return len(word) > 2 and word[-2:] in ("'s", "’s")


def _names(words: Sequence[str]) -> list[_Name]:
    names: list[_Name] = []
    first = next((i for i, w in enumerate(words) if w[0].isalnum()), len(words))
    i = 0
    while i < len(words):
        if not _capital(words[i]):
            i += 1
            continue
        start, end = i, i + 1
        while end < len(words) and not _possessive(words[end - 1]):
            if _capital(words[end]):
                end += 1
            elif (
                words[end].casefold() in _PARTICLES
                and end + 1 < len(words)
                and _capital(words[end + 1])
            ):
                end += 2
            else:
                break
        i = end
        opened = start == first and words[start].casefold() in _OPENERS
        if opened:
            start += 1
            if start == end or not _capital(words[start]):
                continue
        possessive = _possessive(words[end - 1])
        text = " ".join(words[start:end])
        if possessive:
            text = text[:-2]
        weak = start == first and end - start == 1
        before = words[start - 1] if start else ""
        leads = (
            start == first or opened or not before[0].isalnum() or before.casefold() in _CLAUSE_ENDS
        )
        names.append(_Name(start, end, text, possessive, weak, leads))
    return names


def _relations_in(words: list[str], names: list[_Name], found: _Found) -> None:
    lower = [w.casefold() for w in words]
    by_start = {n.start: n for n in names}
    by_end = {n.end: n for n in names if not n.possessive}
    if _call_me(lower, by_start, found):
        return
    if _possessed(lower, words, names, by_start, found):
        return
    subject: tuple[str, str] | None = None  # (name, type) of the last relation's subject
    i = 0
    while i < len(words):
        verb = next(
            (v for v in _VERBS.get(lower[i], ()) if tuple(lower[i : i + len(v.words)]) == v.words),
            None,
        )
        if verb is None:
            i += 1
            continue
        end = i + len(verb.words)
        here = _subject(lower, i, by_end, verb, subject)
        if here is not None and not _negated(lower, i, end):
            made = _object(words, lower, end, verb, by_start, here[0])
            if made is not None:
                relation, target, target_type, name_like = made
                found.relation(here[0], relation, target)
                found.entity(here[0], here[1] if here[1] != DEFAULT_TYPE else verb.subject_type)
                if name_like:
                    found.entity(target, target_type)
                subject = here
        i = end


def _subject(
    lower: list[str],
    at: int,
    by_end: Mapping[int, _Name],
    verb: _Verb,
    last: tuple[str, str] | None,
) -> tuple[str, str] | None:
    """Who does ``verb`` (at ``at``): the user, a name just before it, or after "and" the
    subject of the sentence's previous relation."""
    before = at
    while before > 0 and lower[before - 1] in _ADVERBS:
        before -= 1
    if before == 0:
        return None
    if lower[before - 1] == "i":
        return (USER, "person") if verb.person != "3" else None
    if lower[before - 1] == "and" and last is not None:
        return last
    name = by_end.get(before)
    if name is not None and name.leads and verb.person != "1":
        return name.text, DEFAULT_TYPE
    return None


def _negated(lower: list[str], start: int, end: int) -> bool:
    before = lower[start - 1] if start else ""
    after = lower[end] if end < len(lower) else ""
    return before in _NEGATIONS or after in _NEGATIONS


def _object(
    words: list[str],
    lower: list[str],
    at: int,
    verb: _Verb,
    by_start: Mapping[int, _Name],
    subject: str,
) -> tuple[str, str, str, bool] | None:
    """(relation, target, target type, target is a name) for the words from ``at``."""
    relation, target_type = verb.relation, verb.target_type
    if verb.relation == "is":
        relation = "is" if lower[at - 1] == "am" else lower[at - 1]
        if at < len(words) and lower[at] == "the":
            made = _of(words, lower, at + 1, by_start)
            if made is not None:
                return made
        if at < len(words) and lower[at] in ("a", "an"):
            phrase = _phrase(words, lower, at + 1)
            return None if phrase is None else ("is_a", phrase, DEFAULT_TYPE, False)
        if subject == USER and at in by_start:
            relation, target_type = "name", "person"
    elif verb.relation == "has" and at + 1 < len(words) and lower[at] in ("a", "an"):
        made = _called(words, lower, at + 1, by_start)
        if made is not None:
            return made
    name = by_start.get(at + 1 if at < len(words) and lower[at] in _ARTICLES else at)
    if name is not None:
        return relation, name.text, target_type, True
    phrase = _phrase(words, lower, at)
    return None if phrase is None else (relation, phrase, DEFAULT_TYPE, False)


def _of(
    words: list[str], lower: list[str], at: int, by_start: Mapping[int, _Name]
) -> tuple[str, str, str, bool] | None:
    """ "the capital of France" from ``at`` (after "the"): ("capital_of", "France")."""
    for size in (1, 2, 3):
        if at + size < len(words) and lower[at + size] == "of":
            role = relation_key(" ".join(lower[at : at + size]))
            name = by_start.get(at + size + 1)
            if name is not None:
                return f"{role}_of", name.text, DEFAULT_TYPE, True
            phrase = _phrase(words, lower, at + size + 1)
            return None if phrase is None else (f"{role}_of", phrase, DEFAULT_TYPE, False)
    return None


def _called(
    words: list[str], lower: list[str], at: int, by_start: Mapping[int, _Name]
) -> tuple[str, str, str, bool] | None:
    """ "dog called Rex" from ``at`` (after "a"): ("dog", "Rex")."""
    for size in (1, 2):
        if at + size < len(words) and lower[at + size] in ("called", "named"):
            name = by_start.get(at + size + 1)
            if name is None:
                return None
            what = lower[at : at + size]
            return relation_key(" ".join(what)), name.text, _kind_of(what[-1]), True
    return None


def _kind_of(noun: str) -> str:
    if noun in _PETS:
        return "animal"
    return "person" if noun in _FAMILY else DEFAULT_TYPE


def _phrase(words: list[str], lower: list[str], at: int) -> str | None:
    """The few words from ``at`` up to the end of the clause, without a leading article;
    ``None`` for nothing or a pronoun."""
    end = at
    while (
        end < len(words)
        and end - at < _MAX_PHRASE
        and words[end][0].isalnum()
        and lower[end] not in _CLAUSE_ENDS
    ):
        end += 1
    start = at + 1 if at < end and lower[at] in _ARTICLES else at
    if start >= end or lower[start] in _PRONOUNS:
        return None
    return " ".join(words[start:end])


def _call_me(lower: list[str], by_start: Mapping[int, _Name], found: _Found) -> bool:
    """ "Call me Ana": the user's name."""
    if lower[:2] != ["call", "me"] or 2 not in by_start:
        return False
    name = by_start[2].text
    found.relation(USER, "name", name)
    found.entity(USER, "person")
    found.entity(name, "person")
    return True


def _possessed(
    lower: list[str],
    words: list[str],
    names: list[_Name],
    by_start: Mapping[int, _Name],
    found: _Found,
) -> bool:
    """ "Ana's brother is Tom", "My dog is called Rex", "My favourite colour is blue":
    (owner, thing, value). Kept to names, "called"/"named" and attributes, since "my dog
    is friendly" says nothing about who the dog is."""
    owner: tuple[str, int] | None = None
    if lower[0] == "my":
        owner = (USER, 1)
    elif names and names[0].start == 0 and names[0].possessive:
        owner = (names[0].text, names[0].end)
    if owner is None:
        return False
    who, at = owner
    for size in (1, 2, 3):
        be = at + size
        if be >= len(words) or lower[be] not in ("is", "was"):
            continue
        thing = lower[at:be]
        if not all(w[0].isalpha() for w in thing):
            return False
        value = be + 1
        called = value < len(words) and lower[value] in ("called", "named")
        value += called
        name = by_start.get(value)
        attribute = thing[0] in ("favourite", "favorite") or " ".join(thing) in _ATTRIBUTES
        if name is None and not (attribute and not called):
            return False
        target = name.text if name is not None else _phrase(words, lower, value)
        if target is None or _negated(lower, be, be + 1):
            return False
        found.relation(who, relation_key(" ".join(thing)), target)
        found.entity(who, "person" if who == USER else DEFAULT_TYPE)
        if name is not None:
            found.entity(name.text, _kind_of(thing[-1]))
        return True
    return False


# --- facts in the third person ---------------------------------------------------------

_THIRD_PERSON: Final = {
    "am": "is",
    "have": "has",
    "do": "does",
    "go": "goes",
    "study": "studies",
    "teach": "teaches",
    "watch": "watches",
    "fly": "flies",
    "try": "tries",
}
_UNCHANGED: Final = frozenset(
    """
    was had did will would can could should must might may went got made met saw took
    left bought sold grew began became came ate drank wrote ran won lost found felt knew
    thought told said cannot spent kept gave built taught brought heard sent paid moved
    """.split()
)
_REGULAR: Final = frozenset(
    """
    live work like love hate prefer enjoy speak own want need play come think use drive
    know believe feel eat drink run read write plan hope cook travel visit walk listen
    stay keep take make get support follow wear ride
    """.split()
)
_IMPORTANCE: Final = (
    (re.compile(r"\b(name|called|allerg\w*)\b", re.I), 0.9),
    (
        re.compile(
            r"\b(live[sd]?|born|from|work(s|ed)?|job|married|wife|husband|partner|son|daughter|"
            r"children|kids|years old|stud(y|ies|ied))\b",
            re.I,
        ),
        0.8,
    ),
    (
        re.compile(
            r"\b(like[sd]?|love[sd]?|hate[sd]?|prefer(s|red)?|favou?rite|enjoy(s|ed)?|"
            r"vegetarian|vegan|dog|cat|pet)\b",
            re.I,
        ),
        0.7,
    ),
)


def _fact(sentence: str, words: list[str]) -> Fact | None:
    """The sentence as a fact about the user, if it states something in the first
    person."""
    lower = [w.casefold() for w in words]
    if lower[:2] == ["call", "me"] and len(words) > 2 and _capital(words[2]):
        return Fact(text=f"The user's name is {words[2]}.", importance=0.9)
    if "i" not in lower and "my" not in lower:
        return None
    if lower[0] in _REQUESTS or sum(w[0].isalnum() for w in words) < 3:
        return None
    importance = next((v for pattern, v in _IMPORTANCE if pattern.search(sentence)), 0.5)
    return Fact(text=_third_person(sentence), importance=importance)


_SUBJECT = re.compile(
    r"\b(?:(?P<be>I'm|I’m)|(?P<have>I've|I’ve)|I)\s+(?:(?P<adverb>"
    + "|".join(sorted(_ADVERBS))
    + r")\s+)?(?P<verb>[\w'’]+)"
)


_COMPOUND = re.compile(r"(?:^|[,;:]\s*)(?:[Mm]y\s+\w+|[A-Z]\w*)\s+(?:and|or)\s+$")


def _third_person(sentence: str) -> str:
    """ "I live in Lisbon." as "The user lives in Lisbon."; the sentence as it was when a
    safe rewrite is not known (a verb after "I" that is not in the tables, or "me" left)."""
    text = sentence.rstrip(".!;: ")
    unknown = False

    def subject(match: re.Match[str]) -> str:
        nonlocal unknown
        # "Ana and I love Porto": a compound subject takes no "loves"
        unknown = unknown or bool(_COMPOUND.search(match.string[: match.start()]))
        adverb = f"{match['adverb']} " if match["adverb"] else ""
        if match["be"] or match["have"]:
            return f"the user {'is' if match['be'] else 'has'} {adverb}{match['verb']}"
        verb = _conjugated(match["verb"])
        unknown = unknown or verb is None
        return f"the user {adverb}{verb}"

    rewritten = _SUBJECT.sub(subject, text)
    # "my" is "the user's" until the user has been named, "their" after
    rewritten = re.sub(
        r"\bmy\b",
        lambda m: "their" if "the user" in m.string[: m.start()] else "the user's",
        rewritten,
        flags=re.IGNORECASE,
    )
    rewritten = re.sub(r"\bmyself\b", "themselves", rewritten)
    left = re.search(r"\b(I|me|mine|we|us|our|I'd|I’d|I'll|I’ll)\b", rewritten, re.IGNORECASE)
    if unknown or left is not None:
        rewritten = text
    return rewritten[:1].upper() + rewritten[1:] + "."


def _conjugated(verb: str) -> str | None:
    word = verb.casefold()
    if word in _THIRD_PERSON:
        return _THIRD_PERSON[word]
    if word in _UNCHANGED or word.endswith("ed"):
        return word
    if word in ("don't", "don’t"):
        return "doesn't"
    if word in _REGULAR:
        return word + "es" if word.endswith(("s", "sh", "ch", "x", "z", "o")) else word + "s"
    return None
