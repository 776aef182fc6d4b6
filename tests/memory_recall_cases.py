"""The long-term recall suite: what one user told a personal assistant over 20 sessions,
and 50 questions she asks later, each answered by exactly one of those facts.

The user is Nora, a product manager in Manchester with a partner, two children, a dog and a
cat. Across 20 sessions spread over 59 days she tells the assistant 200 things (10 a
session) about herself, her family, her pets, work, travel, health, money, home and plans.
Facts are written as a fact extractor writes them ("The user ..."), which is what a policy
with ``remember: [user_facts]`` stores. Some are deliberately confusable:

- things that changed: the address (fact 2, then 150), the GP (41, 191), the vet (33, 192),
  the checkout launch date (13, 105), the Lisbon flight (131, 197), the physio schedule
  (43, 121), the bin day (140, 151), the Duolingo streak (58, 194);
- two of a kind: two pets (Pickle the dog, Mochi the cat), two trips (Kyoto with the family,
  Lisbon alone for a talk), two backend colleagues (Rahul, then Dmitri), two allergies
  (hers, Leo's), a therapist and a physiotherapist, two neighbours (Mrs. Patel, then Ken and
  Maureen), two swimming children.

Questions are phrased the way a person asks later. ``paraphrase`` questions (35) avoid the
answering fact's key words, names aside (synonyms, "mum" for "mother", "hot spring inn" for
"ryokan", "these days" for "since the move"); ``lexical`` ones (15) share them ("What's my
cat called?" for "...a cat called Mochi"). Every question needs one fact, never two (no
"my best friend's wedding" when only another fact says who the best friend is). The
questions were written with the facts, before any embedder was run on them, and were not
changed after.

The suite is played through the real policy layer: a compiled program whose MemoryPolicy
keeps user facts in an embedded ChromaDB store. :func:`tell` makes one
:meth:`~runtime.memory.service.MemoryService.remember` per fact (a scripted extractor
returns the fact, as a model would) at the simulated time of its session; :func:`ask`
makes one :meth:`~runtime.memory.service.MemoryService.recall` per question and
``top_k``, two days after the last session; :func:`run` does both.
``tests/integration/test_memory_recall.py`` asserts floors on it;
``benchmarks/memory_recall_bench.py`` prints the figures of every embedder.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Literal

from compiler.pipeline import compile_paths
from compiler.symbols import Program
from runtime.llm.types import ModelRequest, ModelResponse
from runtime.memory.service import MemoryService, Who

__all__ = [
    "DEFAULT_WEIGHTS",
    "FACTS",
    "QUESTIONS",
    "RELEVANCE_ONLY",
    "SESSION_DAYS",
    "Kind",
    "Outcome",
    "Question",
    "Report",
    "ask",
    "program",
    "run",
    "sessions",
    "tell",
]

Kind = Literal["lexical", "paraphrase"]

#: the day (from the first session) each of the 20 sessions took place
SESSION_DAYS: Final = (0, 3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48, 52, 56, 59)
#: questions are asked this many days after the first session
ASKED_ON_DAY: Final = 61
#: Monday 6 January 2025, 19:00 UTC: the first session
START: Final = 1_736_190_000.0
#: minutes between two facts of one session
TURN_MINUTES: Final = 3
#: what the scripted extractor says every fact is worth: one value, so the importance term
#: of the retrieval score ranks nothing and only relevance and recency order recalls
IMPORTANCE: Final = 0.7

#: (relevance, recency, importance) weights of the retrieval score
DEFAULT_WEIGHTS: Final = (0.5, 0.3, 0.2)
RELEVANCE_ONLY: Final = (1.0, 0.0, 0.0)

TENANT: Final = "nora"
AGENT: Final = "assistant"
POLICY: Final = "personal"

FACTS: Final[tuple[str, ...]] = (
    # session 0, day 0: introductions (facts 0-9)
    "The user's name is Nora Lindqvist and she prefers to be called Nora.",
    "The user was born in Gothenburg, Sweden, and moved to England at nineteen.",
    "The user lives in a second-floor flat at 41 Wilmslow Road in Manchester.",
    "The user works as a product manager at Lumen Pay, a payments start-up.",
    "The user's partner Tomás is a nurse on the cardiac ward at Wythenshawe Hospital.",
    "The user has two children: Elsa, who is seven, and Leo, who is four.",
    "The user has a border terrier called Pickle.",
    "The user is allergic to penicillin.",
    "The user drinks oat-milk flat whites and avoids dairy in coffee.",
    "The user's birthday is on the 3rd of March.",
    # session 1, day 3: work (10-19)
    "The user's manager at Lumen Pay is Grace Adeyemi, the head of product.",
    "Rahul Mehta is the backend engineer the user works with most on the checkout team.",
    "Sofia Brandt is the designer on the user's team and is based in the Berlin office.",
    "The user's team is rebuilding the checkout flow, with a launch target of mid-May.",
    "The user has a weekly one-to-one with Grace every Wednesday at 10am.",
    "The user works from home on Mondays and Fridays and is in the office the other days.",
    "The Lumen Pay office is on the fourth floor of a converted mill in Ancoats.",
    "The user finds quarterly planning meetings exhausting and would rather read a summary.",
    "The user's performance review is scheduled for the end of June.",
    "The user's team uses Linear for tickets and Notion for product specs.",
    # session 2, day 6: family (20-29)
    "Elsa goes to Old Moat Primary School and is in Year 2.",
    "Leo attends Little Acorns nursery three days a week.",
    "The user does the school run on Mondays and Tomás does it on Thursdays.",
    "Elsa has swimming lessons on Saturday mornings at the Arcadia leisure centre.",
    "Leo is allergic to peanuts and has an EpiPen kept at nursery.",
    "Elsa wants to become a marine biologist and is obsessed with octopuses.",
    "The user's mother, Ingrid, still lives in Gothenburg and visits every summer.",
    "The user's younger brother Erik is a carpenter in Malmö.",
    "Tomás's parents live in Seville, and the family spends Christmas there every other year.",
    "Leo's favourite bedtime story is The Gruffalo and he asks for it every night.",
    # session 3, day 9: pets (30-39)
    "Pickle the border terrier is five years old and was adopted from a rescue in Stockport.",
    "The user also has a grey British shorthair cat called Mochi.",
    "Mochi takes a thyroid tablet every morning, hidden in her breakfast.",
    "Pickle's vet is Parkside Veterinary Clinic in Chorlton.",
    "Pickle is due his annual booster vaccination in early May.",
    "Mochi is terrified of the vacuum cleaner and hides under the bed when it runs.",
    "Pickle eats grain-free kibble from Lily's Kitchen.",
    "The user's neighbour Mrs. Patel feeds Mochi when the family is away.",
    "A dog walker called Jordan takes Pickle out on Tuesdays and Thursdays.",
    "Mochi is eleven, older than Pickle, and came with the user from her first flat.",
    # session 4, day 12: health (40-49)
    "The user has mild asthma and uses a blue salbutamol inhaler when she runs.",
    "The user's GP is Dr. Okonkwo at Withington Medical Centre.",
    "The user is having physiotherapy for a torn meniscus in her left knee.",
    "The user's physio sessions are on Friday afternoons at 3pm with Liam.",
    "The user's dentist is Dr. Hale on Burton Road, and her next check-up is in August.",
    "The user gets migraines when she skips meals or sleeps badly.",
    "The user is trying to cut down to one coffee a day.",
    "The user takes vitamin D in the winter months on her GP's advice.",
    "The user is short-sighted and wears glasses for driving and screen work.",
    "The user's blood type is O negative and she donates blood twice a year.",
    # session 5, day 15: the Japan trip (50-59)
    "The user is planning a family trip to Japan in April, mostly in Kyoto.",
    "The family flies to Osaka Kansai with Finnair, via Helsinki, on the 5th of April.",
    "In Kyoto the family is staying in a machiya townhouse near Gion.",
    "The user wants to see the cherry blossoms along the Philosopher's Path.",
    "Tomás wants to take a day trip to Nara to see the deer.",
    "The user booked a tea ceremony for the whole family on the 9th of April.",
    "The budget for the Japan trip is about £6,500 including flights.",
    "The user's passport expires in November next year.",
    "The user is learning Japanese on Duolingo and has a 120-day streak.",
    "The user wants to buy a good kitchen knife at Nishiki market.",
    # session 6, day 18: buying a house (60-69)
    "The user and Tomás have had an offer accepted on a three-bedroom house in Chorlton.",
    "The mortgage is with Nationwide, a five-year fix at 4.1%.",
    "The solicitor handling the house purchase is Harriet Cole at Brabners.",
    "Completion on the house is expected in late February.",
    "The landlord of the user's flat is Mr. Dawson, and the tenancy needs two months' notice.",
    "The user wanted a garden so that Pickle can run around.",
    "The new house will need a new boiler before next winter.",
    "The user's broadband is with Hyperoptic and she wants to keep it after the move.",
    "The user wants to paint the kitchen of the new house sage green.",
    "The user saved the deposit in a Lifetime ISA over four years.",
    # session 7, day 21: tastes (70-79)
    "The user is vegetarian but eats fish now and then at restaurants.",
    "The user hates coriander and says it tastes like soap.",
    "The user's favourite place to eat in Manchester is Mackie Mayor in the Northern Quarter.",
    "Tomás cooks most weekday dinners and the user bakes bread at weekends.",
    "The user's sourdough starter is called Bertil and is six years old.",
    "The user's favourite band is The National, and she has seen them live four times.",
    "The user mostly reads crime novels and is working through the Martin Beck series.",
    "The user prefers window seats on planes.",
    "The user dislikes phone calls and would rather get a message or an email.",
    "The user's favourite colour is a deep bottle green.",
    # session 8, day 24: hobbies (80-89)
    "The user sings alto in a community choir that rehearses on Tuesday evenings.",
    "The user goes bouldering at The Depot on Thursday evenings with her friend Aisha.",
    "Aisha Rahman is the user's closest friend from university and works as a vet.",
    "The choir's summer concert is on the 21st of June at St Ann's Church.",
    "The user runs the Wythenshawe parkrun on Saturday mornings when her knee allows.",
    "The user is knitting a jumper for Leo, her first attempt at one.",
    "The user is in a book club that meets on the last Sunday of the month.",
    "The user plays padel with Rahul from work once a month.",
    "The user wants to learn to sail and is looking at courses on Windermere.",
    "The user watches Formula 1 with Tomás and supports McLaren.",
    # session 9, day 27: money (90-99)
    "The user's current account is with Monzo and her savings are with Chase.",
    "The user sets aside £300 a month for the children's Junior ISAs.",
    "The user's car insurance with Admiral renews on the 14th of July.",
    "The user drives a blue 2019 Skoda Octavia estate.",
    "The user pays £45 a month for a gym membership she barely uses.",
    "The user's pension is with Aviva through Lumen Pay, and she pays in 6%.",
    "The user and Tomás split the household bills 60/40 because she earns more.",
    "Council tax for the flat is paid by direct debit on the 1st of each month.",
    "The user owes her brother Erik £200 for the Christmas flights he booked.",
    "The user wants to open a stocks and shares ISA and invest in index funds.",
    # session 10, day 30: news at work (100-109)
    "Lumen Pay announced at an all-hands meeting that it is being acquired.",
    "The user worries the acquisition will put her team's roadmap on hold.",
    "Grace told the user she is being considered for promotion to senior product manager.",
    "Rahul is leaving Lumen Pay at the end of May to join a start-up in Amsterdam.",
    "Dmitri Volkov is the new backend engineer hired to replace Rahul.",
    "The checkout launch has been pushed back from mid-May to the end of June.",
    "The user presents the checkout metrics to the board on the 2nd of June.",
    "The user's target for the new checkout is a 3% uplift in conversion.",
    "The user mentors a junior product manager called Ellie Frost.",
    "The user's work laptop is a MacBook Pro and her personal one is a ThinkPad.",
    # session 11, day 33: more on Japan (110-119)
    "The user booked a ryokan with a private onsen in Hakone for two nights after Kyoto.",
    "The user bought a 7-day Japan Rail Pass for each member of the family.",
    "Elsa wants to go to the Kyoto Aquarium because of its octopus tank.",
    "The user wants to eat at a shojin ryori temple restaurant near Tenryu-ji.",
    "The family flies back from Tokyo Haneda on the 19th of April.",
    "While the family is in Japan, Pickle will stay with Aisha.",
    "The user is worried that Leo will struggle with the jet lag.",
    "The user has an annual family travel insurance policy with Staysure.",
    "The user wants to bring back matcha from Uji for her mother.",
    "The user wants to learn enough Japanese to order food politely.",
    # session 12, day 36: health again (120-129)
    "The user's MRI showed the meniscus tear is healing and she will not need surgery.",
    "Liam has moved the user's physio to every other Friday.",
    "The user had her flu jab at the pharmacy in January.",
    "The user sees a therapist called Joanna on Monday evenings, by video, for work stress.",
    "The user is trying to be asleep by 11pm and keeps her phone out of the bedroom.",
    "The user is lactose intolerant, which is why she avoids dairy.",
    "Tomás has high blood pressure and takes amlodipine every day.",
    "Elsa needs glasses and has an eye test booked at Specsavers on the 20th.",
    "Leo had his preschool booster jabs last week.",
    "The user wants to try yoga for her back and is looking at Yoga Space Chorlton.",
    # session 13, day 39: the Lisbon conference (130-139)
    "The user is giving a talk on checkout design at a payments conference in Lisbon on the "
    "28th of May.",
    "The user flies to Lisbon alone with easyJet from Manchester on the 27th of May.",
    "In Lisbon the user is staying at a hotel in Chiado booked by the conference.",
    "The user wants to stay an extra day after the conference to visit Sintra.",
    "Sofia from the Berlin office will also attend the conference.",
    "Lumen Pay's comms team has to approve the user's slides two weeks before the talk.",
    "The user wants to try the pastéis de nata at Manteigaria.",
    "Before the children were born, the user and Tomás went to Iceland and saw the northern "
    "lights.",
    "The user's dream trip is walking the Camino de Santiago.",
    "The user gets sick on boats and takes Stugeron before a ferry.",
    # session 14, day 42: diary (140-149)
    "At the flat, bin day is Wednesday, with recycling every other week.",
    "The user's car is due its MOT on the 2nd of April.",
    "The user's garage is Chorlton Motors, run by a mechanic called Pete.",
    "The user is giving up alcohol for Lent.",
    "Aisha is getting married in Edinburgh on the 16th of August.",
    "The user is Aisha's maid of honour and is organising her hen weekend in Whitby.",
    "The user has a video call with her mother every Sunday at 6pm.",
    "Erik and his girlfriend Linnea are expecting a baby in July.",
    "The user wants to buy Elsa a microscope for her birthday.",
    "Elsa's eighth birthday party is on the 17th of May at the Sea Life centre.",
    # session 15, day 45: moving in (150-159)
    "The user, Tomás and the children moved into the house at 12 Beech Avenue, Chorlton, on "
    "the 18th of February.",
    "At the new house, bin day is Monday and the green bin goes out fortnightly.",
    "The removal company was Bell's Removals, and they broke a mirror.",
    "The user still has to tell the DVLA and her bank about the change of address.",
    "The new house has a south-facing garden with an old apple tree.",
    "The boiler in the new house is a Worcester Bosch that is fifteen years old.",
    "The new neighbours are Ken and Maureen, a retired couple with a spaniel.",
    "Elsa stays at Old Moat Primary until September, so the school run is now a 15-minute drive.",
    "The user is turning the box room into a home office.",
    "The user has ordered a microchip cat flap for the back door for Mochi.",
    # session 16, day 48: work and projects (160-169)
    "The user is writing a children's picture book about an octopus, inspired by Elsa.",
    "The user's side project is a budgeting spreadsheet she would like to turn into an app.",
    "The user got the promotion to senior product manager, starting in April.",
    "After the promotion the user's salary is £78,000.",
    "Ellie Frost and Marcus Green, two product managers, will report to the user.",
    "Dmitri has settled in well and writes very thorough design docs.",
    "The bank acquiring Lumen Pay is Northway Bank, and the deal closes in the summer.",
    "After the acquisition the user's team must move its tickets from Linear to Jira.",
    "The user would like to take a two-week sabbatical in the autumn.",
    "The user has a £1,500 learning budget a year and wants to spend it on a data analysis course.",
    # session 17, day 52: home and tastes (170-179)
    "The user wants to plant raspberries and a herb bed in the new garden.",
    "The user got a quote of £11,000 for an air source heat pump.",
    "The user's favourite podcast is The Rest Is History.",
    "The user is listening to the audiobook of Tomorrow, and Tomorrow, and Tomorrow.",
    "The user is running again after physio and did a 5k in 29 minutes.",
    "The user has her groceries delivered by Ocado on Sunday mornings.",
    "The user's usual takeaway is from Dosa Republic in Chorlton.",
    "The user would like a second dog one day, maybe a whippet.",
    "The user wants to reupholster her grandmother's old armchair in green velvet.",
    "The user does not like surprise parties.",
    # session 18, day 56: family again (180-189)
    "Tomás is switching to night shifts in March, Sunday to Tuesday nights.",
    "The user's mother Ingrid is coming to stay for two weeks in late June.",
    "Leo is learning to swim and has lessons on Wednesday afternoons.",
    "Elsa is the narrator in the school play on the 28th of March.",
    "The user and Tomás met at a friend's wedding in Bath in 2012; their anniversary is the "
    "12th of October.",
    "Tomás is training for the Great Manchester Run 10k in May.",
    "Erik is coming over at Easter to help build a shed in the new garden.",
    "The user's grandmother Astrid turns 95 in August, with a party in Gothenburg.",
    "Leo will start reception at Oswald Road Primary in September.",
    "The user and Tomás are thinking about getting married next year.",
    # session 19, day 59: loose ends (190-199)
    "The user switched her mobile provider to giffgaff.",
    "Since the move the user is registered with Dr. Sandhu at Chorlton Health Centre.",
    "Pickle now goes to Beech Road Vets, which is closer to the new house.",
    "The user cancelled the gym membership and pays for the climbing centre instead.",
    "The user's Duolingo streak has reached 170 days.",
    "The user booked a sailing taster day on Windermere for the 10th of May.",
    "The user wants a reminder on Sunday evenings of the week's school events.",
    "The user's flight to Lisbon has been moved to the 26th of May.",
    "The user has decided to self-publish the picture book and print twenty copies for family.",
    "The user keeps her passwords in 1Password, in a family vault shared with Tomás.",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """A question the user asks later, the index in :data:`FACTS` of the one fact that
    answers it, and whether it shares that fact's key words."""

    text: str
    answer: int
    kind: Kind


def _q(text: str, answer: int, kind: Kind = "paraphrase") -> Question:
    return Question(text=text, answer=answer, kind=kind)


QUESTIONS: Final[tuple[Question, ...]] = (
    _q("Where do I live now?", 150),
    _q("What was my old address, before the move?", 2),
    _q("Which city am I originally from?", 1),
    _q("What's my cat called?", 31, "lexical"),
    _q("How old is Pickle?", 30, "lexical"),
    _q("Is there an antibiotic I must never be prescribed?", 7),
    _q("What food must Leo never eat?", 24),
    _q("Who is my boss at work?", 10),
    _q("When is the new checkout going live?", 105),
    _q("Which airline are we flying to Japan with?", 51),
    _q("Where are we staying in Kyoto?", 52, "lexical"),
    _q("What rate did we lock in on the house loan?", 61),
    _q("Which herb should you never put in my food?", 71),
    _q("What's my sourdough starter called?", 74, "lexical"),
    _q("Which evening is choir rehearsal?", 80, "lexical"),
    _q("Who goes bouldering with me?", 81, "lexical"),
    _q("How much do we put away for the kids' savings every month?", 91),
    _q("What does Tomás do for a living?", 4),
    _q("Who is taking over from Rahul?", 104),
    _q("Which hot spring inn did I book?", 110),
    _q("What day do we come home from the holiday?", 114),
    _q("Who is looking after Pickle while we are abroad?", 115),
    _q("What were the results of my knee scan?", 120),
    _q("Who is my therapist?", 123, "lexical"),
    _q("What medication is Tomás on?", 126),
    _q("What date is my talk in Lisbon?", 130, "lexical"),
    _q("What day do I leave for Portugal?", 197),
    _q("Which colleague from Germany is coming to the event too?", 134),
    _q("What can I take for seasickness?", 139),
    _q("When is Aisha's wedding?", 144),
    _q("Where is the hen weekend?", 145, "lexical"),
    _q("Which day is bin day now?", 151, "lexical"),
    _q("How old is the boiler in the new house?", 155, "lexical"),
    _q("What are the new neighbours called?", 156, "lexical"),
    _q("How much do I earn these days?", 163),
    _q("Who reports to me now?", 164),
    _q("Which bank is buying our company?", 166),
    _q("How much was the heat pump quote?", 171, "lexical"),
    _q("When is mum coming to visit?", 181),
    _q("Who is our family doctor these days?", 191),
    _q("Which vet does Pickle go to now?", 192, "lexical"),
    _q("What is the story I'm writing for my daughter about?", 160),
    _q("How long is my Duolingo streak?", 194, "lexical"),
    _q("Where did I see the aurora?", 137),
    _q("What brand of food does Pickle get?", 36),
    _q("Which racing team do we cheer for?", 89),
    _q("What job does Elsa dream of having when she grows up?", 25),
    _q("What souvenir did I want to get for mum?", 118),
    _q("Should you ring me or text me?", 78),
    _q("What's my blood group?", 49),
)


def sessions() -> list[tuple[int, tuple[str, ...]]]:
    """(day, the ten facts told that day) for each of the 20 sessions, in order."""
    size = len(FACTS) // len(SESSION_DAYS)
    return [(day, FACTS[n * size : (n + 1) * size]) for n, day in enumerate(SESSION_DAYS)]


# --- playing the suite through the policy layer -------------------------------------------


def policy_yaml(embedder: str, weights: Sequence[float]) -> str:
    """An agent and its MemoryPolicy: one user's facts, in embedded ChromaDB."""
    relevance, recency, importance = weights
    return textwrap.dedent(
        f"""\
        apiVersion: kiln/v1
        kind: Agent
        metadata:
          name: {AGENT}
        spec:
          model: local/smollm2-135m
          instructions: You are a personal assistant. Use what you remember about the user.
          memory: {POLICY}
        ---
        apiVersion: kiln/v1
        kind: MemoryPolicy
        metadata:
          name: {POLICY}
        spec:
          scope: user
          short_term: null
          vector: {{backend: chroma, embedder: "{embedder}"}}
          remember: [user_facts]
          retrieval:
            top_k: 5
            min_score: 0
            weights: {{relevance: {relevance}, recency: {recency}, importance: {importance}}}
            recency_half_life_days: 30
        """
    )


def program(folder: Path, embedder: str, weights: Sequence[float] = DEFAULT_WEIGHTS) -> Program:
    """The compiled program of :func:`policy_yaml`, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "assistant.yaml").write_text(policy_yaml(embedder, weights), encoding="utf-8")
    compilation = compile_paths([folder], stdlib=False)
    if not compilation.ok or compilation.program is None:
        raise RuntimeError(f"the recall program does not compile: {compilation.errors}")
    return compilation.program


async def _extract(models: tuple[str, ...], request: ModelRequest) -> ModelResponse:
    """A scripted fact extractor: the user's message is one fact, returned as it is."""
    if request.purpose != "extract":
        raise AssertionError(f"the recall suite only answers extraction, not {request.purpose}")
    content = request.messages[-1]["content"]
    facts = [{"text": content, "importance": IMPORTANCE}]
    return ModelResponse(text=json.dumps({"facts": facts}), model="scripted-extractor")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one recall found for a question: the indices of the recalled facts, best
    first."""

    question: Question
    found: tuple[int, ...]

    def hit(self, k: int) -> bool:
        return self.question.answer in self.found[:k]


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The outcomes of every question for each ``top_k`` asked, with wall times."""

    embedder: str
    weights: tuple[float, float, float]
    outcomes: Mapping[int, tuple[Outcome, ...]]
    recall_s: Mapping[int, float] = field(default_factory=dict)
    #: how long :func:`tell` took, when the report's run told the facts too
    write_s: float = 0.0

    def hit_rate(self, k: int, kind: Kind | None = None) -> float:
        """The share of questions (of ``kind``, or all) whose answer a ``top_k=k`` recall
        found."""
        chosen = [o for o in self.outcomes[k] if kind is None or o.question.kind == kind]
        return sum(o.hit(k) for o in chosen) / len(chosen) if chosen else 0.0

    def misses(self, k: int) -> list[Outcome]:
        """The outcomes of ``top_k=k`` whose answer was not recalled."""
        return [o for o in self.outcomes[k] if not o.hit(k)]

    def summary(self) -> str:
        """Hit rates by ``top_k`` and question kind, then the misses of the largest
        ``top_k``, each with the facts recalled instead."""
        weights = "/".join(f"{w:g}" for w in self.weights)
        lines = [f"recall suite, embedder {self.embedder}, weights {weights}:"]
        for k in sorted(self.outcomes):
            lines.append(
                f"  hit@{k}: {self.hit_rate(k):.2f} (lexical {self.hit_rate(k, 'lexical'):.2f},"
                f" paraphrase {self.hit_rate(k, 'paraphrase'):.2f})"
            )
        k = max(self.outcomes, default=0)
        for miss in self.misses(k):
            lines.append(f"  missed at {k}: {miss.question.text!r} -> fact {miss.question.answer}")
            lines.append(f"    {FACTS[miss.question.answer]}")
            lines.extend(f"    recalled {i}: {FACTS[i]}" for i in miss.found[:2])
        return "\n".join(lines)


def _service(
    folder: Path, embedder: str, weights: Sequence[float], clock: list[float]
) -> MemoryService:
    """A service over the stores under ``folder``, for the program ranking with ``weights``
    (each in its own spec folder), whose time is ``clock[0]``."""
    name = "-".join(f"{w:g}" for w in weights)
    return MemoryService(
        program(folder / f"spec-{name}", embedder, weights),
        root=folder / "memory",
        clock=lambda: clock[0],
    )


async def tell(embedder: str, folder: Path) -> float:
    """Tell the assistant every fact, one ``remember`` (one agent run) per fact, session by
    session, at the simulated time of each; the wall time it took. Stores live under
    ``folder``."""
    now = [START]
    service = _service(folder, embedder, DEFAULT_WEIGHTS, now)
    try:
        started = time.perf_counter()
        for n, (day, told) in enumerate(sessions()):
            who = Who(tenant=TENANT, session=f"session-{n:02d}")
            for turn, fact in enumerate(told):
                now[0] = START + day * 86_400 + turn * TURN_MINUTES * 60
                event = await service.remember(
                    policy=POLICY,
                    agent=AGENT,
                    task=None,
                    prompt=fact,
                    answer="Noted.",
                    who=who,
                    run_id=f"run-{n:02d}-{turn}",
                    models=("scripted-extractor",),
                    ask=_extract,
                )
                texts = [i["text"] for i in event["items"] if i["store"] == "vector"]
                if texts != [fact]:
                    raise RuntimeError(f"one fact should make one memory, made {event}")
        return time.perf_counter() - started
    finally:
        await service.aclose()


async def ask(
    embedder: str,
    folder: Path,
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    ks: Iterable[int] = (1, 5),
) -> Report:
    """Ask every question of the facts :func:`tell` left under ``folder``, two days after
    the last session, once for each ``top_k`` in ``ks``, ranked with ``weights``."""
    relevance, recency, importance = weights
    now = [START + ASKED_ON_DAY * 86_400]
    service = _service(folder, embedder, weights, now)
    who = Who(tenant=TENANT, session="asking")
    facts = {fact: n for n, fact in enumerate(FACTS)}
    outcomes: dict[int, tuple[Outcome, ...]] = {}
    recall_s: dict[int, float] = {}
    try:
        for k in ks:
            found = []
            started = time.perf_counter()
            for question in QUESTIONS:
                recall = await service.recall(
                    policy=POLICY, agent=AGENT, query=question.text, who=who, top_k=k
                )
                texts = [i["text"] for i in recall.items if i["store"] == "vector"]
                found.append(Outcome(question=question, found=tuple(facts[t] for t in texts)))
            recall_s[k] = time.perf_counter() - started
            outcomes[k] = tuple(found)
    finally:
        await service.aclose()
    return Report(
        embedder=embedder,
        weights=(relevance, recency, importance),
        outcomes=outcomes,
        recall_s=recall_s,
    )


async def run(
    embedder: str,
    folder: Path,
    *,
    weights: Sequence[float] = DEFAULT_WEIGHTS,
    ks: Iterable[int] = (1, 5),
) -> Report:
    """:func:`tell`, then :func:`ask`: the whole suite, stores under ``folder``."""
    write_s = await tell(embedder, folder)
    report = await ask(embedder, folder, weights=weights, ks=ks)
    return replace(report, write_s=write_s)
