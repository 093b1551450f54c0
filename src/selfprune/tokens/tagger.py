"""A deterministic category tagger for the tokens of a reasoning chain.

The chain text is split into *words* (numbers, operators, alphabetic words, punctuation); each
word gets one category by the first rule that matches, then every model token takes the category
of the word it overlaps most (a token of pure whitespace takes the category of the next word, the
way `` 4`` belongs to the number it starts).

========================  =====================================================================
category                  rule (first match wins)
========================  =====================================================================
``symbolic_math``         numbers (``12``, ``3.5``, ``1,200``, ``$40``, ``25%``), operators
                          ``+ - − × * / ÷ = ^ < >``, an ``x`` between two numbers, brackets
                          next to math
``coreference``           pronouns and anaphoric determiners (he, she, it, they, them, his, her,
                          its, their, this, that, these, those, ...)
``meta_discourse``        talk about the solving itself: sequencing and conclusion markers (first,
                          next, then, finally, so, therefore, now, ...), the solver's voice (let's,
                          we, us, need, find, calculate, step, answer, ...)
``verbal_math``           quantities and operations in words: number words, plus, times, twice,
                          half, total, each, per, more, fewer, left, remaining, and the action
                          verbs that carry an operation in word problems (buys, gives, sells,
                          eats, loses, splits, shares, adds, subtracts, doubles, ...)
``function``              closed-class words: articles, prepositions, conjunctions, auxiliaries
                          and copulas, and punctuation
``entity_name``           any other word that is capitalised (names) or also occurs in the
                          question (the problem's objects and units: apples, boxes, dollars)
``function`` (default)    every remaining word: content words that carry neither a quantity, an
                          operation, a referent from the question nor discourse structure
========================  =====================================================================
"""

from __future__ import annotations

import re
from collections.abc import Sequence

CATEGORIES = (
    "symbolic_math", "verbal_math", "entity_name", "function", "meta_discourse", "coreference",
)

_COREF = frozenset("""
he she it they him her them his hers its their theirs himself herself itself themselves
this that these those one's
""".split())

_META = frozenset("""
first firstly second secondly third thirdly next then finally lastly so therefore thus hence now
okay ok well alright let let's lets us we we're we'll our need needs find figure calculate
compute determine know think step steps start begin begins recall note remember check answer
question solve means mean meaning given wait hmm look see result results track clearly
carefully problem work working through way
""".split())

_VERBAL_MATH = frozenset("""
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
hundreds thousand thousands million dozen dozens
plus minus times multiply multiplied multiplying multiplies divide divided dividing divides
add added adding adds addition subtract subtracted subtracting subtracts subtraction sum sums
total totals altogether together combined combine difference product quotient twice double
doubles doubled triple triples tripled half halves quarter quarters percent percentage equal
equals equally each per every more less fewer left remaining remain remains rest many much
number numbers amount count counts counting ratio average makes make gives gave give giving
buy buys bought buying get gets got receive receives received receiving sell sells sold selling
eat eats ate eating lose loses lost losing spend spends spent earn earns earned earning split
splits share shares shared sharing keep keeps kept gone increase increases decrease decreases
cost costs price prices worth pay pays paid leaves leave hold holds held
""".split())

_FUNCTION = frozenset("""
a an the of to in on at by for with from into onto about as than like over under between among
and or but nor if while when where which who whom whose what how why there here
is are was were be been being am do does did done has have had will would can could shall should
may might must not no yes all any some both either neither other another such own same
up down out off again further once just only also very too even still already yet
after before during until via within without
""".split())

_NUMBER = r"\$?\d+(?:[.,]\d+)*%?"
_WORD_RE = re.compile(rf"{_NUMBER}|[A-Za-z]+(?:'[A-Za-z]+)?|[+\-−×*/÷=^<>]|\S")
_OPERATORS = set("+-−×*/÷=^<>")
_NUMBER_RE = re.compile(_NUMBER)


def _word_categories(chain: str, question: str) -> list[tuple[int, int, str]]:
    question_words = {w.lower() for w in re.findall(r"[A-Za-z]+(?:'[A-Za-z]+)?", question)}
    words = [(m.start(), m.end(), m.group()) for m in _WORD_RE.finditer(chain)]
    is_num = [bool(_NUMBER_RE.fullmatch(w)) for _, _, w in words]
    is_op = [w in _OPERATORS for _, _, w in words]
    out: list[tuple[int, int, str]] = []
    for i, (s, e, w) in enumerate(words):
        lw = w.lower()
        prev_math = i > 0 and (is_num[i - 1] or is_op[i - 1])
        next_math = i + 1 < len(words) and (is_num[i + 1] or is_op[i + 1])
        if is_num[i] or is_op[i]:
            cat = "symbolic_math"
        elif lw == "x" and i > 0 and i + 1 < len(words) and is_num[i - 1] and is_num[i + 1]:
            cat = "symbolic_math"
        elif w in "()[]" and (prev_math or next_math):
            cat = "symbolic_math"
        elif not w[0].isalpha():
            cat = "function"
        elif lw in _COREF:
            cat = "coreference"
        elif lw in _META:
            cat = "meta_discourse"
        elif lw in _VERBAL_MATH:
            cat = "verbal_math"
        elif lw in _FUNCTION:
            cat = "function"
        elif w[0].isupper() or lw in question_words:
            cat = "entity_name"
        else:
            cat = "function"
        out.append((s, e, cat))
    return out


def tag_tokens(chain: str, spans: Sequence[tuple[int, int]], *, question: str = "") -> list[str]:
    """One category per token, from the chain text and each token's ``(start, end)`` character span.

    ``question`` lets problem objects mentioned there count as ``entity_name``. Deterministic:
    the same text and spans always give the same tags. Spans may be empty or overlap (byte-level
    tokens that split a character); a token with no overlap takes the next word's category.
    """
    words = _word_categories(chain, question)
    cats: list[str] = []
    j = 0  # first word that ends after the current token's start (spans are non-decreasing)
    for s, e in spans:
        while j < len(words) and words[j][1] <= s:
            j += 1
        best, best_overlap = None, 0
        k = j
        while k < len(words) and words[k][0] < e:
            overlap = min(e, words[k][1]) - max(s, words[k][0])
            if overlap > best_overlap:
                best, best_overlap = words[k][2], overlap
            k += 1
        if best is None:  # whitespace-only (or empty) token: belongs to the next word
            best = words[j][2] if j < len(words) else "function"
        cats.append(best)
    return cats
