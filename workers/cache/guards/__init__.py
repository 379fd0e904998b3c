"""Guards for the semantic cache: reasons two close texts must not count as the same question.

Sentence embeddings put "Is X safe?" and "Is X not safe?" next to each other, and so "top 5"
and "top 10", "in 2019" and "in 2020", "capital of France" and "capital of Spain", "Is A
bigger than B" and "Is B bigger than A". A cached answer to one is a wrong answer to the
other. :func:`mismatch` vetoes such pairs whatever their cosine similarity; it never says two
texts are the same, only that they are not, so it can only lower the cache's hit rate.

Method. Both texts are normalised (Unicode NFKC, curly quotes straightened) and split into
tokens: words (with their contractions and possessives), numbers (thousands separators,
decimals, percentages, a leading minus), ISO and slashed dates, clock times and clause
punctuation. Each token knows whether it starts a sentence and whether it touches the token
before it ("5k", "1990s", "3rd", "Q2"). Small extractors then read one feature set each:

* negation: ``{"not"}`` when the text holds a negation marker (not, no, never, none, nobody,
  nothing, nowhere, neither, nor, without, cannot, unable, non, any ``n't`` contraction or its
  apostrophe-less spelling such as "dont"); "or not" ("should I or not?") does not count.
  Apart from the sets, a word in one text that is another text's word with a negating prefix
  (un-, in-, im-, il-, ir-, dis-, non-: "safe" / "unsafe") is a negation too.
* date: years (1900-2099, or 1000-1899 after a preposition of time), decades ("1990s"),
  centuries ("19th century"), months (with the day numbers next to them), weekdays,
  quarters ("Q3", "third quarter"), seasons, holidays, clock times ("5pm", "17:30", "noon"),
  ISO or slashed dates, and relative dates ("today", "next week", "last year", "ago").
* number: every number the date extractor did not take, as a canonical value: digits
  ("1,000" = "1000" = "1k" = "one thousand"), written numbers zero to the billions
  ("twenty-five", "a dozen", "twice"), ordinals ("3rd" = "third", kept apart from cardinals),
  percentages ("5%" = "5 percent") and negative numbers. "one" used as a pronoun ("which
  one", "one of") is not a number.
* entity: words that look like names without a named-entity model: a capital letter on a
  word that does not start a sentence, acronyms ("AWS"), and inner capitals ("iPhone",
  "GitHub", even at the start); hyphens inside words are dropped first ("Wi-Fi" = "WiFi").
  Stopwords, date words and "I" are not entities, and a text in capitals keeps only its
  inner capitals. A name in one text matches the other text when the other holds the same
  word in any case, singular or plural ("Paris" / "paris", "JOIN" / "joins").
* direction: words with a pole on an axis (increase / decrease, before / after, import /
  export, upload / download, buy / sell, enable / disable, "turn on" / "turn off", minimum /
  maximum, oldest / newest, ...). For each axis both texts use, the poles must agree; and
  per (axis, the content word the pole word moves: the nearest one before it in its
  clause), so "bond prices fall when rates rise" differs from "bond prices rise when rates
  fall". Comparisons with operands ("X bigger than Y", "X cheaper in A than in B", "A
  before B", "from X to Y", "convert X to Y", "X to Y" between names) are read as (axis,
  left words, right words), turned round when the pole is negative ("Y smaller than X"
  reads as "X bigger than Y"): operands on opposite sides of one axis ("A bigger than B" /
  "B bigger than A") differ, and operands on the same sides excuse opposite pole words.
* question: the kind of answer a clause-opening interrogative asks for: person (who),
  time (when, what year), place (where), reason (why, how come), quantity (how much, how
  many), duration (how long) or measure (how far, how old, what temperature). Two texts
  that both ask for a kind, and for no kind in common, differ ("Who wrote X?" / "When was X
  written?"); a bare what, which or how asks for none.
* substitution: the same words in the same order but one content word swapped ("reverse a
  list" / "sort a list", "on windows" / "on linux"): the same template with another slot
  filled is another question. Swapped stopwords ("How do I" / "How can I") and two forms
  of one word do not count.

The rule: differing feature sets mean a mismatch, named after the first guard that fires,
in the order negation, date, number, entity, direction, question, substitution; each guard
is symmetric, so the check is. Paraphrases that keep the same negation, figures, dates,
names and direction pass ("How do I reset my password?" / "What's the way to reset my
password?"); a paraphrase that swaps "won't" for "fails to", a name for a description or
one noun for its synonym in the same frame ("package" / "parcel") is rejected, which costs
a cache hit, never a wrong answer. Known gaps: names written in lowercase are not seen as
names unless the texts differ by that one word; two different questions that share their
figures, names and direction but are worded differently ("How do I center a div?" / "How
do I center text?") are left to the similarity threshold.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

# ----------------------------------------------------------------------------- tokens


def _split(text: str) -> list[str]:
    """The words of a whitespace-separated list in the source."""
    return text.split()


_TOKEN = re.compile(
    r"""
    (?P<isodate>\d{4}-\d{1,2}-\d{1,2})
  | (?P<slashdate>\d{1,2}/\d{1,2}/\d{2,4})
  | (?P<clock>\d{1,2}:\d{2})
  | (?P<num>(?:(?<![\w.])-)?[$€£¥]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?%?)
  | (?P<word>[A-Za-z]+(?:'[A-Za-z]+)*'?)
  | (?P<punct>[.?!;:,()\n"])
    """,
    re.VERBOSE,
)
_SENTENCE_END = {".", "?", "!", ";", ":", "\n", '"', "("}
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "`": "'"})


@dataclass(frozen=True)
class Token:
    """One token of a text: its kind, its text as written and lowercased, and its context."""

    kind: str  # isodate, slashdate, clock, num, word or punct
    text: str
    lower: str
    sentence_start: bool  # the first word of the text or of a sentence
    attached: bool  # no space between this token and the one before


def normalise(text: str) -> str:
    """NFKC, straight quotes, dashes as hyphens and single spaces."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = re.sub(r"[\u2010-\u2015]", "-", text)
    return re.sub(r"[ \t\r\f\v]+", " ", text).strip()


@lru_cache(maxsize=4096)
def tokenize(text: str) -> tuple[Token, ...]:
    """``text``'s tokens, after :func:`normalise`."""
    tokens: list[Token] = []
    start_next = True
    end = -1
    for match in _TOKEN.finditer(normalise(text)):
        kind = match.lastgroup or "punct"
        raw = match.group()
        if kind == "word":
            raw = raw.rstrip("'")
            if raw.lower().endswith("'s"):
                raw = raw[:-2]
        if not raw:
            continue
        tokens.append(Token(kind, raw, raw.lower(), start_next and kind != "punct", match.start() == end))
        end = match.end()
        start_next = kind == "punct" and (start_next or raw in _SENTENCE_END)
    return tuple(tokens)


def words(text: str) -> set[str]:
    """The lowercased words and numbers of ``text``."""
    return {t.lower for t in tokenize(text) if t.kind != "punct"}


STOPWORDS = frozenset(
    _split("""a an the is are was were be been being am do does did done doing have has had having i me my
    mine myself you your yours we us our it its this that these those there here what which who whom
    whose how why when where can could should would will shall may might must of in on at for with by
    about as and or but if so to from into onto than then also just only really very please tell
    know want need get got give me let any some all each every other another such same own he she
    him her his they them their one thing things way ways way something anything there's what's
    it's i'm i've i'd i'll you're don't does doesn't s t""")
)

# ----------------------------------------------------------------------------- negation

_NEGATORS = frozenset(
    _split("not no never none nobody nothing nowhere neither nor without cannot unable non")
)
_BARE_CONTRACTIONS = frozenset(
    _split("""dont doesnt didnt isnt arent wasnt werent cant couldnt wont wouldnt shouldnt hasnt havent
    hadnt aint mustnt neednt""")
)
_NEGATING_PREFIXES = ("non", "dis", "un", "in", "im", "il", "ir")


def negations(text: str) -> frozenset[str]:
    """``{"not"}`` when ``text`` negates, else empty."""
    tokens = tokenize(text)
    for i, token in enumerate(tokens):
        word = token.lower
        is_negator = word in _NEGATORS or word.endswith("n't") or word in _BARE_CONTRACTIONS
        if not is_negator or token.kind != "word":
            continue
        after = tokens[i + 1] if i + 1 < len(tokens) else None
        before = tokens[i - 1].lower if i > 0 else ""
        if word == "no" and after is not None and after.text == "." and token.text in {"No", "no"}:
            continue  # "No. 5"
        if word == "not" and before == "or":
            continue  # "should I or not?"
        return frozenset({"not"})
    return frozenset()


def prefix_negation(a: str, b: str) -> bool:
    """Whether a word of one text is a word of the other with a negating prefix ("unsafe")."""
    words_a, words_b = words(a), words(b)
    for mine, theirs in ((words_a - words_b, words_b - words_a), (words_b - words_a, words_a - words_b)):
        for word in mine:
            for prefix in _NEGATING_PREFIXES:
                stem = word[len(prefix) :]
                if word.startswith(prefix) and len(stem) >= 3 and stem in theirs:
                    return True
    return False


# ----------------------------------------------------------------------------- dates

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
_AMBIGUOUS_MONTHS = frozenset({"may", "mar", "jan", "dec", "sep", "oct", "nov", "aug", "jun", "jul", "apr"})
WEEKDAYS = frozenset(_split("monday tuesday wednesday thursday friday saturday sunday"))
_SEASONS = frozenset({"summer", "winter", "autumn"})
_AMBIGUOUS_SEASONS = frozenset({"spring", "fall"})
HOLIDAYS = frozenset(_split("christmas easter thanksgiving halloween hanukkah ramadan diwali"))
_RELATIVE_DAYS = frozenset({"today", "tonight", "tomorrow", "yesterday", "ago", "weekend", "weekday"})
_RELATIVE_MODIFIERS = frozenset({"this", "next", "last", "previous", "coming", "past", "current"})
_RELATIVE_UNITS = frozenset(
    {
        "week",
        "month",
        "year",
        "weekend",
        "quarter",
        "decade",
        "century",
        "night",
        "morning",
        "afternoon",
        "evening",
    }
    | WEEKDAYS
    | _SEASONS
    | _AMBIGUOUS_SEASONS
)
_TIME_PREPOSITIONS = frozenset(_split("in since from until till by before after during of"))
_COUNTED = frozenset(
    _split("""calories kcal dollars euros pounds usd eur gbp people users words steps mg g kg km miles meters
    metres feet ft rows lines requests tokens items characters chars kb mb gb tb ms seconds minutes hours
    rpm watts mah lbs points employees records times""")
)
_CLOCK_WORDS = {"noon": "12:00pm", "midday": "12:00pm", "midnight": "12:00am"}
_ORDINAL_SUFFIX = re.compile(r"^(st|nd|rd|th)$")
DATE_WORDS = frozenset(
    set(MONTHS) | WEEKDAYS | _SEASONS | HOLIDAYS | _RELATIVE_DAYS | set(_CLOCK_WORDS) | {"am", "pm"}
)


def _integer(token: Token | None) -> int | None:
    """A plain whole number token's value ("2019", not "$2019", "2.5" or "1,000")."""
    if token is None or token.kind != "num" or not token.text.isdigit():
        return None
    return int(token.text)


def _day_from(tokens: tuple[Token, ...], i: int, forward: bool) -> tuple[int, set[int]] | None:
    """A day of the month starting (``forward``) or ending at ``i``: "3", "3rd", "third"."""
    if not 0 <= i < len(tokens):
        return None
    token = tokens[i]
    if not forward and _ORDINAL_SUFFIX.match(token.lower) and token.attached and i >= 1:
        value = _integer(tokens[i - 1])
        return (value, {i - 1, i}) if value is not None and 1 <= value <= 31 else None
    value = _integer(token)
    if value is not None and 1 <= value <= 31:
        suffix = i + 1 < len(tokens) and tokens[i + 1].attached and _ORDINAL_SUFFIX.match(tokens[i + 1].lower)
        return value, {i, i + 1} if suffix else {i}
    ordinal = _ORDINALS.get(token.lower)
    return (ordinal, {i}) if ordinal is not None and 1 <= ordinal <= 31 else None


def _day_next_to_month(tokens: tuple[Token, ...], i: int) -> tuple[int, set[int]] | None:
    """The day written with the month at ``i``: "March 3", "3 March", "the 3rd of March"."""
    day = _day_from(tokens, i + 1, forward=True) or _day_from(tokens, i - 1, forward=False)
    if day is None and i >= 2 and tokens[i - 1].lower == "of":
        day = _day_from(tokens, i - 2, forward=False)
    return day


def _date_features(tokens: tuple[Token, ...]) -> tuple[frozenset[str], set[int]]:
    """The date features of ``tokens`` and the indices of the tokens they used."""
    features: set[str] = set()
    used: set[int] = set()
    n = len(tokens)

    def at(i: int) -> Token | None:
        return tokens[i] if 0 <= i < n else None

    for i, token in enumerate(tokens):
        word = token.lower
        nxt, prev = at(i + 1), at(i - 1)
        if token.kind == "isodate":
            year, month, day = (int(part) for part in token.text.split("-"))
            features |= {f"year:{year}", f"month:{month}", f"day:{day}"}
            used.add(i)
        elif token.kind == "slashdate":
            features.add("date:" + "/".join(str(int(part)) for part in token.text.split("/")))
            used.add(i)
        elif token.kind == "clock":
            hour, minute = token.text.split(":")
            suffix = nxt.lower if nxt is not None and nxt.lower in {"am", "pm"} else ""
            features.add(f"time:{int(hour)}:{minute}{suffix}")
            used.add(i)
        elif token.kind == "num":
            value = _integer(token)
            if nxt is not None and nxt.attached and nxt.lower == "s" and value is not None:
                features.add(f"decade:{value}")  # 1990s, 90s
                used |= {i, i + 1}
            elif nxt is not None and nxt.lower in {"am", "pm"} and value is not None and value <= 12:
                features.add(f"time:{value}:00{nxt.lower}")
                used |= {i, i + 1}
            elif prev is not None and prev.lower == "q" and token.attached and value in {1, 2, 3, 4}:
                features.add(f"quarter:{value}")
                used |= {i - 1, i}
            elif value is not None and "." not in token.text and "%" not in token.text:
                before = prev.lower if prev is not None else ""
                counted = nxt is not None and nxt.lower in _COUNTED
                if (1900 <= value <= 2099 and not counted) or (
                    1000 <= value < 1900 and before in _TIME_PREPOSITIONS
                ):
                    features.add(f"year:{value}")
                    used.add(i)
        elif token.kind == "word":
            if word in MONTHS and _is_month(tokens, i):
                features.add(f"month:{MONTHS[word]}")
                used.add(i)
                written_day = _day_next_to_month(tokens, i)
                if written_day is not None:
                    features.add(f"day:{written_day[0]}")
                    used |= written_day[1]
            elif word in WEEKDAYS or word.rstrip("s") in WEEKDAYS:
                features.add(f"weekday:{word.rstrip('s')}")
            elif word in _SEASONS or (
                word in _AMBIGUOUS_SEASONS and prev is not None and prev.lower in _RELATIVE_MODIFIERS | {"in"}
            ):
                features.add(f"season:{'autumn' if word == 'fall' else word}")
            elif word in HOLIDAYS:
                features.add(f"holiday:{word}")
            elif word in _RELATIVE_DAYS:
                features.add(word)
            elif word in _CLOCK_WORDS:
                features.add(f"time:{_CLOCK_WORDS[word]}")
            elif word in _RELATIVE_MODIFIERS and nxt is not None and nxt.lower.rstrip("s") in _RELATIVE_UNITS:
                features.add(f"{word}:{nxt.lower.rstrip('s')}")
            elif word == "century":
                ordinal = _ordinal_before(tokens, i)
                if ordinal is not None:
                    features.add(f"century:{ordinal[0]}")
                    used |= ordinal[1]
            elif word == "quarter":
                ordinal = _ordinal_before(tokens, i)
                if ordinal is not None and ordinal[0] <= 4:
                    features.add(f"quarter:{ordinal[0]}")
                    used |= ordinal[1]
    return frozenset(features), used


def _is_month(tokens: tuple[Token, ...], i: int) -> bool:
    token = tokens[i]
    if token.lower not in _AMBIGUOUS_MONTHS:
        return True
    near_number = any(0 <= j < len(tokens) and tokens[j].kind == "num" for j in (i - 1, i + 1)) or (
        i + 2 < len(tokens) and tokens[i + 1].lower == "of" and tokens[i + 2].kind == "num"
    )
    capitalised = token.text[0].isupper() and not token.sentence_start and token.lower != "may"
    prev = tokens[i - 1].lower if i > 0 else ""
    may_month = token.text == "May" and prev in _TIME_PREPOSITIONS | {"early", "late", "mid"}
    return near_number or capitalised or may_month


def _ordinal_before(tokens: tuple[Token, ...], i: int) -> tuple[int, set[int]] | None:
    """The ordinal just before ``tokens[i]`` ("19th", "nineteenth"), with the indices it used."""
    j = i - 1
    if j >= 0 and tokens[j].lower == "the":
        j -= 1
    if j < 0:
        return None
    if j >= 1 and _ORDINAL_SUFFIX.match(tokens[j].lower) and tokens[j].attached:
        value = _integer(tokens[j - 1])
        return (value, {j - 1, j}) if value is not None else None
    ordinal = _word_ordinal(tokens[j].lower)
    if ordinal is not None:
        # "twenty-first": the tens word before it belongs to the same ordinal
        if j >= 1 and tokens[j - 1].lower in _TENS and ordinal < 10:
            return _TENS[tokens[j - 1].lower] + ordinal, {j - 1, j}
        return ordinal, {j}
    return None


def dates(text: str) -> frozenset[str]:
    """The years, months, days, weekdays, times and relative dates ``text`` names."""
    return _date_features(tokenize(text))[0]


# ----------------------------------------------------------------------------- numbers

_UNITS = {
    name: value
    for value, name in enumerate(
        _split("""zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
        fifteen sixteen seventeen eighteen nineteen""")
    )
}
_TENS = {
    name: 10 * (i + 2)
    for i, name in enumerate(_split("twenty thirty forty fifty sixty seventy eighty ninety"))
}
_SCALES = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 10**9, "trillion": 10**12}
_SUFFIX_SCALES = {"k": 1_000, "m": 1_000_000, "mm": 1_000_000, "bn": 10**9, "b": 10**9}
_ORDINALS = {
    name: value
    for value, name in enumerate(
        _split("""zeroth first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth
        thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth""")
    )
} | {name.replace("ty", "tieth"): value for name, value in _TENS.items()}
_OTHER_NUMBERS = {"dozen": Decimal(12), "twice": Decimal(2), "thrice": Decimal(3), "half": Decimal("0.5")}
_A_NUMBER = {**_SCALES, "dozen": 12}
_ONE_PRONOUN_BEFORE = frozenset(_split("which this that each any every the no another some"))
_ONE_PRONOUN_AFTER = frozenset({"of", "another", "by"})
_PERCENT_WORDS = frozenset({"percent", "pct", "percentage"})


def _word_ordinal(word: str) -> int | None:
    return _ORDINALS.get(word)


def _second_is_time(tokens: tuple[Token, ...], i: int) -> bool:
    """Whether "second" is the unit of time here ("per second", "a second"), not the ordinal."""
    return i > 0 and tokens[i - 1].lower in {"per", "a", "each", "every", "one", "split"}


def _written_number(tokens: tuple[Token, ...], i: int, used: set[int]) -> tuple[Decimal, bool, int]:
    """The number written in words from ``tokens[i]``: its value, whether it is an ordinal, its end."""
    total, current, last = Decimal(0), Decimal(0), ""
    j = i
    while j < len(tokens) and j not in used:
        word = tokens[j].lower
        if word in _UNITS and last in {"", "tens", "scale"}:
            current, last = current + _UNITS[word], "unit"
        elif word in _TENS and last in {"", "scale"}:
            current, last = current + _TENS[word], "tens"
        elif word in _ORDINALS and last in {"tens", "scale"}:  # "twenty-first", "hundredth" aside
            return total + current + _ORDINALS[word], True, j + 1
        elif word in _SCALES and last in {"unit", "tens", "scale"}:
            if _SCALES[word] >= 1000:
                total, current = total + current * _SCALES[word], Decimal(0)
            else:
                current *= _SCALES[word]
            last = "scale"
        elif not (word == "and" and last == "scale" and j + 1 < len(tokens)):
            break
        j += 1
    return total + current, False, j


def _canonical(value: Decimal | int) -> str:
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in {"-0", "0"} else text


def _numbers(tokens: tuple[Token, ...], used: set[int]) -> frozenset[str]:
    """Canonical values of the numbers in ``tokens`` not at ``used`` indices."""
    found: set[str] = set()
    n = len(tokens)
    i = 0
    while i < n:
        token = tokens[i]
        if i in used or token.kind not in {"word", "num"}:
            i += 1
            continue
        value: Decimal | None = None
        ordinal = False
        percent = False
        j = i + 1  # first token after the number
        if token.kind == "num":
            raw = token.text.replace(",", "").lstrip("$€£¥").replace("-$", "-")
            percent = raw.endswith("%")
            try:
                value = Decimal(raw.rstrip("%"))
            except InvalidOperation:
                i += 1
                continue
            nxt = tokens[j] if j < n else None
            if nxt is not None and nxt.attached and nxt.lower in _SUFFIX_SCALES:
                value *= _SUFFIX_SCALES[nxt.lower]
                j += 1
            elif nxt is not None and nxt.attached and _ORDINAL_SUFFIX.match(nxt.lower):
                ordinal = True
                j += 1
        else:
            word = token.lower
            if word == "one" and (
                (i > 0 and tokens[i - 1].lower in _ONE_PRONOUN_BEFORE)
                or (i + 1 < n and tokens[i + 1].lower in _ONE_PRONOUN_AFTER)
                or any([t.lower for t in tokens[j : j + 3]] == ["at", "a", "time"] for j in (i + 1, i + 2))
            ):
                i += 1
                continue
            if word in _UNITS or word in _TENS:
                value, ordinal, j = _written_number(tokens, i, used)
            elif word in _ORDINALS and not (word == "second" and _second_is_time(tokens, i)):
                value, ordinal = Decimal(_ORDINALS[word]), True
            elif word in _OTHER_NUMBERS:
                value = Decimal(_OTHER_NUMBERS[word])
            elif word in {"a", "an"} and i + 1 < n and tokens[i + 1].lower in _A_NUMBER:
                value = Decimal(_A_NUMBER[tokens[i + 1].lower])
                j = i + 2
            if value is None:
                i += 1
                continue
        # scale words after digits or words: "5 million", "two thousand"
        while token.kind == "num" and j < n and tokens[j].lower in _SCALES and not ordinal:
            value *= _SCALES[tokens[j].lower]
            j += 1
        if j < n and tokens[j].lower in _PERCENT_WORDS:
            percent = True
            j += 1
        elif j + 1 < n and tokens[j].lower == "per" and tokens[j + 1].lower == "cent":
            percent = True
            j += 2
        text = _canonical(value)
        found.add(f"#{text}" if ordinal else f"{text}%" if percent else text)
        i = j
    return frozenset(found)


def numbers(text: str) -> frozenset[str]:
    """The numbers ``text`` holds, dates left out: "5", "#3" for third, "12.5%"."""
    tokens = tokenize(text)
    return _numbers(tokens, _date_features(tokens)[1])


# ----------------------------------------------------------------------------- entities

_NOT_ENTITIES = frozenset({"i", "ok", "okay", "am", "pm"}) | DATE_WORDS | STOPWORDS


def _is_inner_capital(word: str) -> bool:
    """A capital letter after a lowercase one: "iPhone", "GitHub", "macOS"."""
    return bool(re.search(r"[a-z][A-Z]", word))


def _is_acronym(word: str) -> bool:
    return len(word) >= 2 and word.isalpha() and word.isupper()


def entities(text: str) -> frozenset[str]:
    """The lowercased names ``text`` mentions (see the module docstring)."""
    tokens = [t for t in tokenize(text) if t.kind == "word"]
    shouting = len(tokens) >= 3 and sum(_is_acronym(t.text) for t in tokens) >= 0.6 * len(tokens)
    found: set[str] = set()
    for token in tokens:
        word = token.text
        if token.lower in _NOT_ENTITIES or (shouting and not _is_inner_capital(word)):
            continue
        if _is_inner_capital(word) or _is_acronym(word) or (word[0].isupper() and not token.sentence_start):
            found.add(token.lower)
    return frozenset(found)


def _joined(text: str) -> str:
    """``text`` with the hyphens inside words taken out: "Wi-Fi" reads as "WiFi"."""
    return re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", "", text)


def _mentions(name: str, text_words: set[str]) -> bool:
    """Whether ``text_words`` hold ``name``, in the singular or the plural ("JOIN" / "joins")."""
    forms = {name, name + "s", name + "es", name.removesuffix("s"), name.removesuffix("es")}
    return bool(forms & text_words)


def entity_mismatch(a: str, b: str) -> bool:
    """Whether a name in one text is missing (in every case) from the other."""
    words_a, words_b = words(a) | words(_joined(a)), words(b) | words(_joined(b))
    return any(not _mentions(name, words_b) for name in entities(_joined(a))) or any(
        not _mentions(name, words_a) for name in entities(_joined(b))
    )


# ----------------------------------------------------------------------------- direction

_POLES: dict[str, tuple[tuple[str, int], ...]] = {}


def _poles(axis: str, up: str, down: str) -> None:
    for words_, pole in ((up, 1), (down, -1)):
        for word in words_.split():
            _POLES[word] = (*_POLES.get(word, ()), (axis, pole))


_poles(
    "magnitude",
    """increase increases increased increasing raise raises raised raising rise rises rising grow grows
    growing boost more higher highest maximum maximise maximize max upper bigger biggest larger largest
    greater greatest most exceed exceeds above""",
    """decrease decreases decreased decreasing reduce reduces reduced reducing reduction lower lowers
    lowering lowest drop drops dropping decline declines declining fall falls falling shrink shrinks less
    fewer fewest least minimum minimise minimize min smaller smallest below""",
)
_poles("speed", "faster fastest quicker quickest accelerate speed", "slower slowest decelerate")
_poles("age", "older oldest", "younger youngest newer newest latest")
_poles("time", "after afterwards later latest following post", "before earlier earliest prior pre")
_poles("weight", "heavier heaviest", "lighter lightest")
_poles("temperature", "hotter hottest warmer warmest", "colder coldest cooler coolest")
_poles("distance", "farther further farthest furthest", "closer nearer closest nearest")
_poles("height", "taller tallest", "shorter shortest")
_poles("length", "longer longest", "shorter shortest")
_poles("quality", "better best", "worse worst")
_poles("difficulty", "harder hardest", "easier easiest")
_poles("price", "expensive pricier costlier", "cheaper cheapest cheap")
_poles("safety", "safer safest", "riskier riskiest dangerous")
_poles("strength", "stronger strongest", "weaker weakest")
_poles("import", "import imports importing imported", "export exports exporting exported")
_poles("upload", "upload uploads uploading uploaded", "download downloads downloading downloaded")
_poles("trade", "buy buys buying bought purchase purchasing", "sell sells selling sold")
_poles(
    "crypt",
    "encrypt encrypts encrypting encrypted encryption",
    "decrypt decrypts decrypting decrypted decryption",
)
_poles("encode", "encode encodes encoding encoded", "decode decodes decoding decoded")
_poles("compress", "compress compresses compressing compressed zip", "decompress decompressing unzip extract")
_poles("switch", "enable enables enabling enabled activate", "disable disables disabling disabled deactivate")
_poles("install", "install installs installing installed", "uninstall uninstalls uninstalling uninstalled")
_poles(
    "add", "add adds adding added insert", "remove removes removing removed delete deletes deleting deleted"
)
_poles("session", "login signin", "logout signout")
_poles("account", "deposit deposits depositing", "withdraw withdraws withdrawing withdrawal withdrawals")
_poles(
    "transfer",
    "send sends sending sent outgoing outbound",
    "receive receives receiving received incoming inbound",
)
_poles("git", "push pushes pushing pushed", "pull pulls pulling pulled")
_poles("loan", "lend lends lending lent", "borrow borrows borrowing borrowed")
_poles("ledger", "credit credits credited", "debit debits debited")
_poles("outcome", "win wins winning won profit profits gain gains", "lose loses losing lost loss losses")
_poles("state", "open opens opening", "close closes closing")
_poles("run", "start starts starting", "stop stops stopping")
_poles("order", "ascending asc", "descending desc")
_poles("case", "uppercase", "lowercase")
_poles("join", "merge merges merging", "split splits splitting")
_poles(
    "verdict", "pros advantages benefits upside upsides", "cons disadvantages drawbacks downside downsides"
)
_poles("sign", "positive", "negative")
_poles("truth", "true", "false")
_poles(
    "value",
    "appreciate appreciates appreciation inflation bullish",
    "depreciate depreciates depreciation deflation bearish",
)
_poles("direction", "forward forwards ahead", "backward backwards behind")
_poles("vertical", "north northern", "south southern")
_poles("horizontal", "east eastern", "west western")
_poles("include", "include includes including", "exclude excludes excluding")
_poles(
    "permit",
    "allow allows allowing allowed accept accepts approve",
    "block blocks blocking deny denies reject rejects",
)
_poles("connect", "connect connects connecting", "disconnect disconnects disconnecting")

_PHRASES = {
    ("turn", "on"): ("switch", 1),
    ("switch", "on"): ("switch", 1),
    ("turn", "off"): ("switch", -1),
    ("switch", "off"): ("switch", -1),
    ("log", "in"): ("session", 1),
    ("sign", "in"): ("session", 1),
    ("log", "out"): ("session", -1),
    ("sign", "out"): ("session", -1),
    ("speed", "up"): ("speed", 1),
    ("slow", "down"): ("speed", -1),
    ("scale", "up"): ("magnitude", 1),
    ("scale", "down"): ("magnitude", -1),
    ("go", "up"): ("magnitude", 1),
    ("go", "down"): ("magnitude", -1),
    ("zoom", "in"): ("zoom", 1),
    ("zoom", "out"): ("zoom", -1),
}
_BEFORE_AFTER = {"before": -1, "after": 1, "precede": -1, "precedes": -1, "preceded": -1}
_COMPARING = {"more": 1, "less": -1, "fewer": -1}
_ROUTE_CUES = frozenset(
    _split("""convert converting conversion translate translating translation transfer transferring migrate
    migrating migration move moving port porting switch switching exchange flight flights fly flying
    drive driving train trains bus travel trip ship shipping cast casting change rate rates""")
)
CLAUSE_WINDOW = 24
_RELATION_WORDS = frozenset({"than", "prior", "from", "to", "into"} | set(_BEFORE_AFTER))
_CLAUSE = frozenset({".", "?", "!", ";", ",", "\n", "(", ")"})


@dataclass(frozen=True)
class Relation:
    """An ordered comparison: ``left`` is further along ``axis`` than ``right`` (or goes to it)."""

    axis: str
    left: frozenset[str]
    right: frozenset[str]

    def opposes(self, other: Relation) -> bool:
        """Same axis, operands on opposite sides: "A bigger than B" / "B bigger than A"."""
        return self.axis == other.axis and bool(self.left & other.right) and bool(self.right & other.left)

    def agrees(self, other: Relation) -> bool:
        """Same axis, operands on the same sides: "A bigger than B" / "B smaller than A"."""
        return self.axis == other.axis and bool(self.left & other.left) and bool(self.right & other.right)


def _content(tokens: tuple[Token, ...], start: int, stop: int) -> frozenset[str]:
    """The words of ``tokens[start:stop]`` that are not stopwords (a capital letter is a name: "A")."""
    return frozenset(
        t.lower
        for t in tokens[max(start, 0) : stop]
        if t.kind != "punct" and (t.lower not in STOPWORDS or (len(t.text) == 1 and t.text.isupper()))
    )


def _clause(tokens: tuple[Token, ...], i: int) -> tuple[int, int]:
    """The bounds of the clause around ``tokens[i]`` (between punctuation), at most
    ``CLAUSE_WINDOW`` tokens either side, so that long texts cost linear time."""
    start = i
    while start > max(0, i - CLAUSE_WINDOW) and tokens[start - 1].text not in _CLAUSE:
        start -= 1
    stop = i
    while stop < min(len(tokens), i + CLAUSE_WINDOW) and tokens[stop].text not in _CLAUSE:
        stop += 1
    return start, stop


def _ordered(axis: str, pole: int, left: frozenset[str], right: frozenset[str]) -> list[Relation]:
    """The relation, left more than right on ``axis`` (swapped when ``pole`` is negative).

    A word on both sides ("a cold from being cold") tells neither side apart and is dropped.
    """
    left, right = left - right, right - left
    if not left or not right:
        return []
    return [Relation(axis, left, right) if pole > 0 else Relation(axis, right, left)]


def _name_like(token: Token) -> bool:
    return token.kind == "num" or token.text[:1].isupper() or _is_inner_capital(token.text)


def _comparative(lowers: list[str], i: int, start: int) -> int | None:
    """Where the comparative of the "than" at ``i`` is: just before it, or a known one up to 4 before."""
    if i - 1 < start or lowers[i - 1] in {"other", "rather"}:
        return None
    for k in range(i - 1, max(start, i - 5) - 1, -1):
        if lowers[k] in _COMPARING or lowers[k] in _POLES:
            return k
    return i - 1


def _comparisons(tokens: tuple[Token, ...], i: int, start: int, stop: int) -> list[Relation]:
    """The comparison at the "than" at ``i``: "X bigger than Y", "X more expensive than Y"."""
    lowers = [t.lower for t in tokens]
    k = _comparative(lowers, i, start)
    if k is None:
        return []
    axes: tuple[tuple[str, int], ...]
    if lowers[k] in _COMPARING:  # "more than"
        first, axes = k, (("magnitude", _COMPARING[lowers[k]]),)
    elif k - 1 >= start and lowers[k - 1] in _COMPARING:  # "more expensive than"
        sign = _COMPARING[lowers[k - 1]]
        first = k - 1
        axes = tuple((axis, pole * sign) for axis, pole in _POLES.get(lowers[k], ((lowers[k], 1),)))
    else:  # "bigger than", "smarter than"
        first, axes = k, _POLES.get(lowers[k], ((lowers[k], 1),))
    # the left operand: the clause before "than" but the comparative ("houses cheaper in Texas than")
    left = _content(tokens, start, first) | _content(tokens, k + 1, i)
    right = _content(tokens, i + 1, stop)
    return [relation for axis, pole in axes for relation in _ordered(axis, pole, left, right)]


def _route(tokens: tuple[Token, ...], i: int, start: int, stop: int) -> list[Relation]:
    """The route at the "from" or "to" at ``i``: "from X to Y", "to Y from X", "convert X to Y"."""
    lowers = [t.lower for t in tokens]
    targets = [j for j in range(start, stop) if lowers[j] in {"to", "into"}]
    if lowers[i] == "from":
        after = [j for j in targets if j > i]
        if after:  # from X to Y
            source, target = _content(tokens, i + 1, after[0]), _content(tokens, after[0] + 1, stop)
            return _ordered("route", 1, source, target)
        if targets:  # to Y from X
            return _ordered("route", 1, _content(tokens, i + 1, stop), _content(tokens, targets[-1] + 1, i))
        return _ordered("route", 1, _content(tokens, i + 1, stop), _content(tokens, start, i))
    if "from" in lowers[start:stop] or i == start or i + 1 >= stop:
        return []  # read at the "from"
    cue = any(word in _ROUTE_CUES for word in lowers[start:stop])
    if cue or (_name_like(tokens[i - 1]) and _name_like(tokens[i + 1])):
        return _ordered("route", 1, _content(tokens, start, i), _content(tokens, i + 1, stop))
    return []


def relations(text: str) -> list[Relation]:
    """The ordered comparisons of ``text``: comparatives with "than", before/after, routes."""
    tokens = tokenize(text)
    found: list[Relation] = []
    for i, token in enumerate(tokens):
        word = token.lower
        if word not in _RELATION_WORDS:
            continue
        start, stop = _clause(tokens, i)
        if word == "than":
            found += _comparisons(tokens, i, start, stop)
        elif word in _BEFORE_AFTER or (
            word == "prior" and tokens[i + 1 : i + 2] and tokens[i + 1].lower == "to"
        ):
            right = _content(tokens, i + 2 if word == "prior" else i + 1, stop)
            found += _ordered("time", _BEFORE_AFTER.get(word, -1), _content(tokens, start, i), right)
        elif word in {"from", "to", "into"}:
            found += _route(tokens, i, start, stop)
    return found


def _pole_words(tokens: tuple[Token, ...]) -> list[tuple[int, str, int]]:
    """``(index, axis, pole)`` for each pole word or phrase ("turn off") of ``tokens``."""
    lowers = [t.lower for t in tokens]
    found = []
    for i, word in enumerate(lowers):
        phrase = _PHRASES.get((word, lowers[i + 1])) if i + 1 < len(lowers) else None
        found += [(i, axis, pole) for axis, pole in ((phrase,) if phrase else _POLES.get(word, ()))]
    return found


def poles(text: str) -> dict[str, frozenset[int]]:
    """For each axis ``text`` uses, the poles it takes: +1 (increase, after...) and/or -1."""
    found: dict[str, set[int]] = {}
    for _, axis, pole in _pole_words(tokenize(text)):
        found.setdefault(axis, set()).add(pole)
    return {axis: frozenset(values) for axis, values in found.items()}


def _anchor(tokens: tuple[Token, ...], i: int) -> str | None:
    """What the pole word at ``i`` moves: the nearest content word before it in its clause, else after."""
    start, stop = _clause(tokens, i)
    for j in [*range(i - 1, start - 1, -1), *range(i + 1, stop)]:
        word = tokens[j].lower
        if tokens[j].kind != "punct" and word not in STOPWORDS and word not in _POLES:
            return word
    return None


def anchored_poles(text: str) -> dict[tuple[str, str], frozenset[int]]:
    """The poles per ``(axis, anchor)``: "bond prices fall when rates rise" has prices -1, rates +1."""
    tokens = tokenize(text)
    found: dict[tuple[str, str], set[int]] = {}
    for i, axis, pole in _pole_words(tokens):
        anchor = _anchor(tokens, i)
        if anchor is not None:
            found.setdefault((axis, anchor), set()).add(pole)
    return {key: frozenset(values) for key, values in found.items()}


def _contradicted(mine: list[Relation], theirs: list[Relation]) -> bool:
    """Whether one of ``mine`` is opposed by one of ``theirs`` and agreed by none of them."""
    return any(any(r.opposes(t) for t in theirs) and not any(r.agrees(t) for t in theirs) for r in mine)


def direction_mismatch(a: str, b: str) -> bool:
    """Whether the texts point opposite ways on an axis both use (see the module docstring)."""
    relations_a, relations_b = relations(a), relations(b)
    if _contradicted(relations_a, relations_b) or _contradicted(relations_b, relations_a):
        return True
    # "A bigger than B" / "B smaller than A": opposite words, the same comparison
    agreed = {ra.axis for ra in relations_a for rb in relations_b if ra.agrees(rb)}
    poles_a, poles_b = poles(a), poles(b)
    if any(
        axis in poles_b and poles_b[axis] != values for axis, values in poles_a.items() if axis not in agreed
    ):
        return True
    # both poles in both texts, on different things: "prices fall when rates rise" / the other way
    anchored_a, anchored_b = anchored_poles(a), anchored_poles(b)
    return any(
        key in anchored_b and anchored_b[key] != values
        for key, values in anchored_a.items()
        if key[0] not in agreed
    )


# ----------------------------------------------------------------------------- question types

_HOW = {"much": "quantity", "many": "quantity", "long": "duration", "come": "reason"} | {
    word: "measure"
    for word in _split(
        """far big tall high fast old often large deep heavy hot cold warm early late expensive small wide
        strong quickly soon"""
    )
}
_WHAT_NOUNS = {word: "time" for word in _split("time year day date month century decade hour")} | {
    word: "measure" for word in _split("temperature size age height weight speed distance length")
}
_WH = {
    "who": "person",
    "whom": "person",
    "whose": "person",
    "when": "time",
    "where": "place",
    "why": "reason",
}
_LEADING = frozenset(_split("in at for on to from with by of and so but then ok okay hey hi please"))


def question_types(text: str) -> frozenset[str]:
    """The kinds of answer ``text``'s clauses ask for: person, time, place, reason, quantity, ...

    Only an interrogative that opens a clause counts (after a leading preposition: "At what
    temperature"); a bare "what", "which" or "how" names no kind.
    """
    tokens = tokenize(text)
    found: set[str] = set()
    for i in range(len(tokens)):
        if i > 0 and tokens[i - 1].text not in _CLAUSE:
            continue
        j = i
        while j < len(tokens) and tokens[j].lower in _LEADING:
            j += 1
        word = tokens[j].lower if j < len(tokens) else ""
        following = tokens[j + 1].lower if j + 1 < len(tokens) else ""
        if word in _WH:
            found.add(_WH[word])
        elif word == "how" and following in _HOW:
            found.add(_HOW[following])
        elif word in {"what", "which"} and following in _WHAT_NOUNS:
            found.add(_WHAT_NOUNS[following])
    return frozenset(found)


def question_mismatch(a: str, b: str) -> bool:
    """Whether both texts ask for a kind of answer and no kind is common: "Who wrote X" / "When"."""
    types_a, types_b = question_types(a), question_types(b)
    return bool(types_a) and bool(types_b) and not types_a & types_b


# ----------------------------------------------------------------------------- substitution


def _variants(a: str, b: str) -> bool:
    """Two spellings or forms of one word: "colour" / "color", "sort" / "sorting"."""
    common = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        common += 1
    return common >= 5 or common >= min(len(a), len(b)) - 1


def substitution(a: str, b: str) -> tuple[str, str] | None:
    """The one content word swapped in an otherwise identical question, or None.

    "How do I reverse a list in Python?" / "How do I sort a list in Python?": the same
    template with one slot changed asks something else. Swapped stopwords ("How do I" / "How
    can I") and forms of one word do not count; nor do texts of fewer than 4 words.
    """
    words_a = [t.lower for t in tokenize(a) if t.kind != "punct"]
    words_b = [t.lower for t in tokenize(b) if t.kind != "punct"]
    if len(words_a) != len(words_b) or len(words_a) < 4:
        return None
    swapped = [(x, y) for x, y in zip(words_a, words_b, strict=True) if x != y]
    if len(swapped) != 1:
        return None
    x, y = swapped[0]
    if x in STOPWORDS or y in STOPWORDS or _variants(x, y):
        return None
    return x, y


# ----------------------------------------------------------------------------- the rule


def mismatch(query: str, cached: str) -> str | None:
    """Why ``query`` and ``cached`` are different questions, or None when nothing says so.

    The reason is one of "negation", "date", "number", "entity", "direction", "question" and
    "substitution".
    """
    if negations(query) != negations(cached) or prefix_negation(query, cached):
        return "negation"
    tokens_q, tokens_c = tokenize(query), tokenize(cached)
    dates_q, used_q = _date_features(tokens_q)
    dates_c, used_c = _date_features(tokens_c)
    numbers_q, numbers_c = _numbers(tokens_q, used_q), _numbers(tokens_c, used_c)
    # a four-digit number one text reads as a year and the other as a number ("of 1000" /
    # "of 1,000") is the same figure
    years_q = {f for f in dates_q if f.startswith("year:") and f[5:] in numbers_c}
    years_c = {f for f in dates_c if f.startswith("year:") and f[5:] in numbers_q}
    if dates_q - years_q != dates_c - years_c:
        return "date"
    if numbers_q | {f[5:] for f in years_q} != numbers_c | {f[5:] for f in years_c}:
        return "number"
    if entity_mismatch(query, cached):
        return "entity"
    if direction_mismatch(query, cached):
        return "direction"
    if question_mismatch(query, cached):
        return "question"
    if substitution(query, cached):
        return "substitution"
    return None
