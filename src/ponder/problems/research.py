"""``research``: multi-hop questions over a generated corpus of a world no model has seen.

BrowseComp-Plus (Chen et al. 2025) evaluates deep research offline, against a fixed corpus with
the evidence for each answer known; MuSiQue (Trivedi et al. 2022) builds multi-hop questions by
composing single-hop facts, so that no one document answers them. This generator does both over
an invented world, so that a model cannot answer from memory: people (a trade, a birthplace, a
mentor), towns (a river, a region, a founding year) and societies (a founder, a seat), one
document each (people as Markdown, towns as HTML, societies as plain text), with distractor
sentences that mention other entities so that retrieval has to discriminate.

Questions compose 2 to 4 documents, always starting from a society:

- 2: "In which town was the founder of S born?" (society, founder); "In which region is the seat
  of S?" (society, town);
- 3: "On which river lies the town where the founder of S was born?" (society, founder, town);
  "In which region was the founder of S born?";
- 4: "On which river lies the birthplace of the mentor of the founder of S?" (society, founder,
  mentor, town).

``meta["gold"]`` lists the documents a question needs; the grader (``verify.research``) checks
the answer exactly and the report's citations against them (citation precision). Options:
``people`` (the corpus size: people; towns and societies are a third of it each, default 16 ->
26 documents) and ``hops`` (2, 3, 4 or a range such as 2-4, the default). The same seed gives the
same world and questions.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ponder.problems.base import Problem
from ponder.problems.errors import ProblemSetError

_ONSET = ["b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "th", "br", "dr",
          "kr", "st", "tr", "vr", "sh"]  # fmt: skip
_VOWEL = ["a", "e", "i", "o", "u", "ae", "io", "ou"]
_CODA = ["", "", "n", "r", "l", "s", "th", "m", "sk", "nd"]
_TRADES = ["glassblower", "cartographer", "clockmaker", "botanist", "bookbinder", "astronomer",
           "weaver", "bellfounder", "lens grinder", "archivist"]  # fmt: skip
_KINDS = ["Society", "Guild", "Circle", "Fellowship", "Academy"]
_WARES = ["salt markets", "paper mills", "copper bells", "lantern festival", "stone bridges",
          "spice fairs", "glass furnaces", "river ferries"]  # fmt: skip


def _word(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(_ONSET) + rng.choice(_VOWEL) + rng.choice(_CODA)
                   for _ in range(syllables)).capitalize()  # fmt: skip


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclass
class _Person:
    name: str
    trade: str
    town: int
    born: int
    mentor: int | None = None


@dataclass
class _Town:
    name: str
    river: str
    region: str
    founded: int
    known_for: str


@dataclass
class _Society:
    name: str
    founder: int
    seat: int
    founded: int


class _Names:
    """Unique invented names (no name is a part of another, so exact grading is unambiguous)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.used = rng, set()

    def __call__(self, syllables: int) -> str:
        while True:
            w = _word(self.rng, syllables)
            if len(w) >= 4 and w.lower() not in self.used:
                self.used.add(w.lower())
                return w


def make_world(seed: int, people: int) -> tuple[list[dict], dict[str, Any]]:
    """The documents ({name, text}) of the world of ``seed``, and its entities."""
    rng = random.Random(f"research-world-{seed}-{people}")
    name = _Names(rng)
    regions = [name(2) for _ in range(3)]
    towns = [
        _Town(name(2), name(1), rng.choice(regions), rng.randint(1100, 1700), rng.choice(_WARES))
        for _ in range(max(3, people // 3))
    ]
    folk = [_Person(f"{name(2)} {name(2)}", rng.choice(_TRADES), rng.randrange(len(towns)),
                    rng.randint(1780, 1900)) for _ in range(people)]  # fmt: skip
    for i, p in enumerate(folk):
        if i > 0:
            p.mentor = rng.randrange(i)  # mentors are earlier people: no cycles
    founders = rng.sample(range(1, people), k=min(people - 1, max(3, people // 3)))
    societies = [_Society(f"{name(2)} {rng.choice(_KINDS)}", f, rng.randrange(len(towns)),
                          folk[f].born + rng.randint(25, 50)) for f in founders]  # fmt: skip
    founded_by = {s.founder: s for s in societies}
    docs = []
    for i, p in enumerate(folk):
        other, place = rng.choice(folk), rng.choice(towns)
        article = "an" if p.trade[0] in "aeiou" else "a"
        born = f"{p.name} was {article} {p.trade} born in {towns[p.town].name} in {p.born}."
        text = [f"# {p.name}", "", born]
        if p.mentor is not None:
            text.append(f"{p.name} learned the trade under {folk[p.mentor].name}.")
        if i in founded_by:
            s = founded_by[i]
            text.append(f"In {s.founded}, {p.name} founded the {s.name}.")
        text += [
            "",
            f"Later in life {p.name} travelled to {place.name}, where {p.name} met {other.name}.",
        ]
        docs.append({"name": f"people/{_slug(p.name)}.md", "text": "\n".join(text) + "\n"})
    for t in towns:
        text = (
            f"{t.name}\n\n{t.name} is a town in the {t.region} region, on the river {t.river}. "
            f"It was founded in {t.founded}.\n\n{t.name} is known for its {t.known_for}.\n"
        )
        docs.append({"name": f"towns/{_slug(t.name)}.html", "text": text})
    for s in societies:
        text = (
            f"The {s.name}\n\nThe {s.name} was founded in {s.founded} by "
            f"{folk[s.founder].name}. Its seat is in {towns[s.seat].name}.\n\n"
            f"The {s.name} meets each spring.\n"
        )
        docs.append({"name": f"societies/{_slug(s.name)}.txt", "text": text})
    return docs, {"people": folk, "towns": towns, "societies": societies}


def _questions(world: dict[str, Any]) -> list[tuple[int, str, str, list[str]]]:
    """Every (hops, question, answer, gold documents) of a world."""
    folk, towns = world["people"], world["towns"]

    def pdoc(i: int) -> str:
        return f"people/{_slug(folk[i].name)}.md"

    def tdoc(i: int) -> str:
        return f"towns/{_slug(towns[i].name)}.html"

    out = []
    for s in world["societies"]:
        f = folk[s.founder]
        sdoc = f"societies/{_slug(s.name)}.txt"
        home, seat = towns[f.town], towns[s.seat]
        chain = [sdoc, pdoc(s.founder), tdoc(f.town)]
        out += [
            (2, f"In which town was the founder of the {s.name} born?", home.name, chain[:2]),
            (2, f"In which region is the seat of the {s.name}?", seat.region, [sdoc, tdoc(s.seat)]),
            (3, f"On which river lies the town where the founder of the {s.name} was born?",
             home.river, chain),
            (3, f"In which region was the founder of the {s.name} born?", home.region, chain),
        ]  # fmt: skip
        if f.mentor is not None:
            m = folk[f.mentor]
            q = f"On which river lies the birthplace of the mentor of the founder of the {s.name}?"
            out.append((4, q, towns[m.town].river, chain[:2] + [pdoc(f.mentor), tdoc(m.town)]))
    return out


def _options(options: dict[str, Any]) -> tuple[int, int, int]:
    unknown = sorted(set(options) - {"people", "hops"})
    if unknown:
        raise ProblemSetError(
            f"research has no option {', '.join(unknown)}; its options are hops, people"
        )
    people = options.get("people", 16)
    if isinstance(people, str) and people.isdigit():
        people = int(people)
    if not isinstance(people, int) or isinstance(people, bool) or not 6 <= people <= 500:
        raise ProblemSetError(
            f"option people of research takes a whole number from 6 to 500; got {people!r}"
        )
    hops = str(options.get("hops", "2-4"))
    m = re.fullmatch(r"([234])(?:-([234]))?", hops)
    if not m or int(m.group(2) or m.group(1)) < int(m.group(1)):
        raise ProblemSetError(
            f"option hops of research takes 2, 3, 4 or a range such as 2-4; got {hops!r}"
        )
    return people, int(m.group(1)), int(m.group(2) or m.group(1))


@dataclass(frozen=True)
class ResearchSet:
    name: str = "research"
    summary: str = (
        "generated multi-hop questions over a generated corpus (options: people=16, hops=2-4)"
    )
    kind: str = "research"

    def load(
        self,
        data: str | None = None,
        limit: int | None = None,
        seed: int = 0,
        level: str | int | None = None,
        subject: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> list[Problem]:
        if data is not None:
            raise ProblemSetError("research is generated; it reads no data file, drop --data")
        for flag, value in (("level", level), ("subject", subject)):
            if value is not None:
                raise ProblemSetError(f"research has no {flag} field; drop --{flag}")
        people, low, high = _options(dict(options or {}))
        docs, world = make_world(seed, people)
        pool = [q for q in _questions(world) if low <= q[0] <= high]
        random.Random(f"research-questions-{seed}").shuffle(pool)
        wanted = len(pool) if limit is None else limit
        if wanted > len(pool):
            raise ProblemSetError(
                f"research:people={people} has {len(pool)} questions of {low}-{high} hops; "
                "lower --limit or raise people"
            )
        return [
            Problem(f"research-s{seed}-p{people}-{i}", q, a, "research",
                    {"documents": docs, "gold": gold, "hops": hops, "people": people})
            for i, (hops, q, a, gold) in enumerate(pool[:wanted])
        ]  # fmt: skip


def write_corpus(folder: str | Path, documents: list[dict]) -> Path:
    """Write generated documents as files (towns as real HTML pages), for ``ponder research``."""
    folder = Path(folder)
    for d in documents:
        path = folder / d["name"]
        path.parent.mkdir(parents=True, exist_ok=True)
        text = d["text"]
        if path.suffix == ".html":
            title, _, body = text.partition("\n\n")
            paras = "".join(f"<p>{p.strip()}</p>" for p in body.split("\n\n") if p.strip())
            text = (f"<html><head><title>{title}</title></head><body><nav>Atlas · Index · Search"
                    f"</nav><article><h1>{title}</h1>{paras}</article></body></html>")  # fmt: skip
        path.write_text(text, encoding="utf-8")
    return folder
