"""The declared trend fields: the table spells out each one, with a column that fits its rule."""

import pytest
import sqlalchemy as sa

from trends_gql.core.fields import FIELDS, TREND_FIELDS, Choice, Count, Text, TrendField
from trends_gql.core.models import TREND_TABLE

# The trend table's columns that hold no field of a record.
BOOKKEEPING = {"id", "fingerprint", "uploaded_at", "updated_at"}


def test_the_trend_table_has_a_column_for_each_field_in_their_order() -> None:
    assert [c.key for c in TREND_TABLE.columns if c.key not in BOOKKEEPING] == list(FIELDS)


@pytest.mark.parametrize("field", TREND_FIELDS, ids=lambda f: f.name)
def test_each_column_holds_what_the_rule_of_its_field_allows(field: TrendField) -> None:
    column = TREND_TABLE.c[field.name]
    assert column.nullable == (not field.required and field.default is None)
    kind = column.type
    match field.rule:
        case Text(max_length=None):
            assert type(kind) is sa.Text
        case Text(max_length=length):
            assert (type(kind), getattr(kind, "length", None)) == (sa.String, length)
        case Count():
            assert type(kind) is sa.Integer
        case Choice(members=members):
            assert isinstance(kind, sa.Enum)
            assert kind.enum_class is members
