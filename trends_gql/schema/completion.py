"""Values of plain selections completed at once, as graphql-core would complete them.

A selection is plain when each of its fields reads its object alone (an attribute, or a
synchronous method taking only `self`: plain_reader), takes no arguments and carries
no directive, its fragments apply to the type they are in, and its types are objects, lists,
scalars and enums (no interface or union). Such a selection is compiled once (`completer`)
into a function from a value to its JSON-able answer, which follows graphql-core's
completion rule by rule: fields in the order they are collected, nulls, lists, and leaves
through `coerce_output_value`. Where graphql-core would report an error (a null where none may
be, a value that does not coerce, a reader that raises) it raises Fallback instead, and the
caller runs graphql-core's execution, which reports it.
"""

from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from operator import attrgetter
from types import FunctionType
from typing import Any, cast

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLString,
    InlineFragmentNode,
    SelectionSetNode,
    Undefined,
)
from graphql.pyutils import is_iterable
from strawberry.types.field import StrawberryField
from strawberry.types.fields.resolver import SELF_PARAMSPEC

Complete = Callable[[Any], Any]
Fragments = Mapping[str, FragmentDefinitionNode]
TYPENAME = "__typename"


def plain_reader(definition: StrawberryField) -> Callable[[Any], Any] | None:
    """How to get the field's value from its object alone, if nothing else is involved."""
    if definition.extensions or definition.permission_classes:
        return None
    resolver = definition.base_resolver
    if resolver is None:  # the attribute, read with the default resolver
        return (
            attrgetter(definition.python_name) if definition.default_resolver is getattr else None
        )
    # A synchronous method of the type taking only `self` (such as Trend.id); these are pure
    # reads in our schema, so one that raises can be called again on graphql-core's path.
    reserved = {spec for spec, p in resolver.reserved_parameters.items() if p is not None}
    only_self = reserved == {SELF_PARAMSPEC} and not resolver.arguments
    plain_function = isinstance(resolver.wrapped_func, FunctionType)
    if only_self and plain_function and not resolver.is_async:
        return cast(Callable[[Any], Any], resolver.wrapped_func)
    return None


class NotPlain(Exception):
    """The selection needs graphql-core's execution."""


class Fallback(Exception):
    """This value needs graphql-core's execution, which reports what is wrong with it."""


CONDITIONS = frozenset({"skip", "include"})


def collect(
    parent: GraphQLObjectType,
    selection_sets: Iterable[SelectionSetNode],
    fragments: Fragments,
    conditional: bool = False,
) -> dict[str, list[FieldNode]]:
    """The field nodes of a plain selection by response key, in graphql-core's order.

    With `conditional`, its fields (not its fragments) may carry @skip and @include, left for
    the caller to decide with the variables.
    """
    fields: dict[str, list[FieldNode]] = {}
    visited: set[str] = set()

    def walk(selection_set: SelectionSetNode) -> None:
        for selection in selection_set.selections:
            if selection.directives and not (
                conditional
                and isinstance(selection, FieldNode)
                and all(d.name.value in CONDITIONS for d in selection.directives)
            ):
                raise NotPlain  # @skip, @include, @defer: not plain
            if isinstance(selection, FieldNode):
                key = (selection.alias or selection.name).value
                fields.setdefault(key, []).append(selection)
                continue
            if isinstance(selection, InlineFragmentNode):
                condition, inner = selection.type_condition, selection.selection_set
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in visited:
                    continue
                visited.add(name)
                fragment = fragments[name]
                condition, inner = fragment.type_condition, fragment.selection_set
            else:  # pragma: no cover  # no other kind of selection exists
                raise NotPlain
            if condition is not None and condition.name.value != parent.name:
                raise NotPlain  # an interface or union condition
            walk(inner)

    for selection_set in selection_sets:
        walk(selection_set)
    return fields


def completer(
    type_: GraphQLOutputType,
    nodes: list[FieldNode],
    fragments: Fragments,
    answers: Mapping[str, Complete] | None = None,
) -> Complete:
    """The completion of values of `type_` selected by `nodes`; NotPlain if not plain.

    `answers` are the completions of some response keys of the (first) object, from the object
    itself, in place of their fields' own.
    """
    if isinstance(type_, GraphQLNonNull):
        inner = completer(type_.of_type, nodes, fragments, answers)

        def non_null(value: Any) -> Any:
            completed = None if value is None or value is Undefined else inner(value)
            if completed is None:
                raise Fallback
            return completed

        return _shortcut(type_.of_type, non_null)
    if isinstance(type_, GraphQLList):
        item = completer(type_.of_type, nodes, fragments)

        def listed(value: Any) -> Any:
            if value is None or value is Undefined:
                return None
            if not is_iterable(value):
                raise Fallback
            return [item(v) for v in value]

        return listed
    if isinstance(type_, GraphQLLeafType):
        return _shortcut(type_, _leaf(type_))
    if isinstance(type_, GraphQLObjectType):
        return _object(type_, nodes, fragments, answers or {})
    raise NotPlain  # an interface or a union


def _leaf(type_: GraphQLLeafType) -> Complete:
    coerce = type_.coerce_output_value

    def leaf(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise Fallback
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise Fallback
        return coerced

    return leaf


def _shortcut(type_: GraphQLOutputType, complete: Complete) -> Complete:
    """`complete`, but values of the exact Python type a leaf type answers at once (a `str` of
    a String or ID, an `int` within Int's range, a member of an enum's class) answered as its
    coercion would answer them, without the calls."""
    if type_ is GraphQLString or type_ is GraphQLID:
        return lambda value: value if type(value) is str else complete(value)
    if type_ is GraphQLInt:
        low, high = GRAPHQL_MIN_INT, GRAPHQL_MAX_INT
        return lambda value: (
            value if type(value) is int and low <= value <= high else complete(value)
        )
    if type_ is GraphQLBoolean:
        return lambda value: value if type(value) is bool else complete(value)
    members = getattr(type_, "wrapped_cls", None)  # a Strawberry enum's Python class
    if (
        isinstance(type_, GraphQLEnumType)
        and isinstance(members, type)
        and issubclass(members, Enum)
    ):
        return _enum_shortcut(type_, members, complete)
    return complete


def _enum_shortcut(type_: GraphQLEnumType, members: type[Enum], complete: Complete) -> Complete:
    names = {member: type_.coerce_output_value(member) for member in members}

    def shortcut(value: Any) -> Any:
        return names[value] if type(value) is members else complete(value)

    return shortcut


def _object(
    type_: GraphQLObjectType,
    nodes: list[FieldNode],
    fragments: Fragments,
    answers: Mapping[str, Complete],
) -> Complete:
    if type_.is_type_of is not None:
        raise NotPlain
    fields: list[tuple[str, Callable[[Any], Any], Complete]] = []
    typename = type_.name
    sets = [node.selection_set for node in nodes if node.selection_set]
    for key, group in collect(type_, sets, fragments).items():
        name = group[0].name.value
        if key in answers:
            fields.append((key, _same, answers[key]))
            continue
        if name == TYPENAME:
            fields.append((key, lambda _: typename, _same))
            continue
        field = type_.fields.get(name)
        definition = field.extensions.get("strawberry-definition") if field else None
        if field is None or field.args or not isinstance(definition, StrawberryField):
            raise NotPlain
        read = plain_reader(definition)
        if read is None:
            raise NotPlain
        fields.append((key, read, completer(field.type, group, fragments)))

    def complete(value: Any) -> Any:
        if value is None or value is Undefined:
            return None
        if isinstance(value, Exception):
            raise Fallback
        return {key: finish(read(value)) for key, read, finish in fields}

    return complete


def _same(value: Any) -> Any:
    return value
