"""The ten data fields of a trend record, each declared once: its name, CSV header and rule.

Everything else that lists them derives from TREND_FIELDS: the rules (core/validation.py), the
CSV format (imports/csvio.py), search, filters and facets (trends/filters.py), exports and
backups. The table (core/models.py), its migration and the GraphQL types (schema/types.py) spell
them out; tests/test_fields.py and tests/test_schema.py check that they agree with this list.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class TechnologyReadinessLevel(StrEnum):
    PILOT = "Pilot"
    DEVELOPMENT = "Development"
    DEPLOY = "Deploy"


class ImpactStrength(StrEnum):
    LOW = "Low"
    MEDIUM = "Medium"
    HIGH = "High"


class Steepl(StrEnum):
    S = "S"
    T = "T"
    E = "E"
    P = "P"
    L = "L"


MEGATREND_MAX = 150
MACROTREND_MAX = 200
COUNT_MAX = 2**31 - 1  # the largest INTEGER of both databases


@dataclass(frozen=True)
class Text:
    """Text without outer spaces; empty is None unless required; at most max_length characters."""

    required: bool = False
    max_length: int | None = None


@dataclass(frozen=True)
class Count:
    """A whole number from 0 to COUNT_MAX, or None when empty."""


@dataclass(frozen=True)
class Choice:
    """One of `members`, by value or name ignoring case or by one of `words`; empty is `default`."""

    members: type[StrEnum]
    default: StrEnum | None = None
    words: Mapping[str, StrEnum] = field(default_factory=dict)


Rule = Text | Count | Choice


@dataclass(frozen=True)
class TrendField:
    """One data field: `name` is its attribute, column and JSON key (GraphQL camel-cases it)."""

    name: str
    header: str  # as the pipeline writes it, and as exports write it
    rule: Rule
    aliases: tuple[str, ...] = ()  # more header names an import accepts (case, spaces ignored)
    searched: bool = False  # `search` matches it (and the trigram index ix_trend_search holds it)

    @property
    def required(self) -> bool:
        return isinstance(self.rule, Text) and self.rule.required

    @property
    def default(self) -> StrEnum | None:
        """What an empty value becomes; a field with a default is never null."""
        return self.rule.default if isinstance(self.rule, Choice) else None


# In their order: of CSV columns, of the table, of the GraphQL types, of fingerprints.
TREND_FIELDS = (
    TrendField(
        "megatrend", "Megatrend", Text(required=True, max_length=MEGATREND_MAX), searched=True
    ),
    TrendField(
        "macrotrend", "Macrotrend", Text(required=True, max_length=MACROTREND_MAX), searched=True
    ),
    TrendField(
        "challenges_and_research_gaps",
        "Challenges and Research Gaps",
        Text(required=True),
        aliases=("challenges",),
        searched=True,
    ),
    TrendField(
        "total_count_of_publications",
        "Total Count of Publications",
        Count(),
        aliases=("publications",),
    ),
    TrendField("total_count_of_patents", "Total Count of Patents", Count(), aliases=("patents",)),
    TrendField(
        "technology_readiness_level",
        "Technology Readiness Level",
        Choice(TechnologyReadinessLevel),
        aliases=("trl",),
    ),
    TrendField(
        "impact_strength",
        "Impact Strength",
        Choice(ImpactStrength, ImpactStrength.LOW),
        aliases=("impact",),
    ),
    TrendField(
        "steepl",
        "STEEPL",
        Choice(
            Steepl,
            Steepl.S,
            words={
                "social": Steepl.S,
                "technological": Steepl.T,
                "economic": Steepl.E,
                "environmental": Steepl.E,
                "political": Steepl.P,
                "legal": Steepl.L,
            },
        ),
    ),
    TrendField(
        "relevant_industries",
        "Relevant Industries",
        Text(),
        aliases=("industries",),
        searched=True,
    ),
    TrendField(
        "real_world_application_and_use_cases",
        "Real-World Application and Use Cases",
        Text(),
        aliases=("usecases",),
        searched=True,
    ),
)
FIELDS = tuple(f.name for f in TREND_FIELDS)
REQUIRED = tuple(f.name for f in TREND_FIELDS if f.required)
SEARCHED = tuple(f.name for f in TREND_FIELDS if f.searched)
# The fields of an enum: each is a filter and a facet of the API.
CHOICES: dict[str, type[StrEnum]] = {
    f.name: f.rule.members for f in TREND_FIELDS if isinstance(f.rule, Choice)
}
# The fields of a count, by the short name (their first alias) of their filter's bounds:
# publicationsMin and publicationsMax, patentsMin and patentsMax.
COUNTS: dict[str, str] = {f.aliases[0]: f.name for f in TREND_FIELDS if isinstance(f.rule, Count)}


def api_name(name: str) -> str:
    """The GraphQL name of a field or argument `name`: Strawberry's own camel-casing."""
    # Imported here: Strawberry takes a third of a second to import, which only the web needs.
    from strawberry.utils.str_converters import to_camel_case

    return to_camel_case(name)
