"""The size and cost of a GraphQL document, measured in one pass: each fragment is walked once.

A fragment's figures are combined at each of its spreads (sums of fields, aliases and cost;
the deepest nesting), so a document whose fragments spread each other many times over is
measured in time linear in its text, however large it would be expanded.

Cost estimates the rows and values a request asks for: a scalar costs 1, an object 1 plus its
selection, a list the page size it may hold times (1 plus its selection), where the page size
is the `first` of the connection around it (capped at the largest page), and a field declared
with a fixed cost (the aggregates) costs that, whatever is selected in it.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLArgument,
    GraphQLField,
    GraphQLInputField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    get_named_type,
)

# The metadata key of a field's fixed cost: strawberry.field(metadata={COST: 100}).
COST = "trends_cost"
# The metadata key of a list argument's largest length: strawberry.argument(metadata={...: 3}),
# or of a list field of an input type (strawberry.field), checked here on the raw value so that
# a huge list is refused before it is converted.
MAX_ITEMS = "trends_max_items"
# The page size assumed for a list outside any connection (lists of errors, facets, runs).
LIST_SIZE = 10
PAGE_ARGUMENT = "first"


@dataclass(frozen=True)
class Figures:
    """What a selection asks for once fragments are expanded."""

    fields: int = 0
    depth: int = 0
    aliases: int = 0
    cost: int = 0
    # A list argument longer than it may be: (argument, its largest length, the length given).
    too_long: tuple[str, int, int] | None = None

    def __add__(self, other: "Figures") -> "Figures":
        return Figures(
            self.fields + other.fields,
            max(self.depth, other.depth),
            self.aliases + other.aliases,
            self.cost + other.cost,
            self.too_long or other.too_long,
        )


_NOTHING = Figures()


def measure(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any] | None,
    max_page: int,
) -> Figures:
    """The figures of one operation of a document, with its variables."""
    root = schema.get_root_type(operation.operation)
    return _Measurer(schema, operation, fragments, variables or {}, max_page).selections(
        operation.selection_set, root, None
    )


class _Measurer:
    def __init__(
        self,
        schema: GraphQLSchema,
        operation: OperationDefinitionNode,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        max_page: int,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = dict(variables)
        for definition in operation.variable_definitions or ():
            name = definition.variable.name.value
            if name not in self.variables and isinstance(definition.default_value, IntValueNode):
                self.variables[name] = int(definition.default_value.value)
        self.max_page = max_page
        # (fragment, page size around it) -> figures; None while it is being measured (a cycle,
        # which validation reports afterwards, counts as nothing here).
        self.done: dict[tuple[str, int | None], Figures | None] = {}

    def selections(
        self, node: SelectionSetNode, parent: GraphQLNamedType | None, page: int | None
    ) -> Figures:
        total = _NOTHING
        for selection in node.selections:
            if isinstance(selection, FieldNode):
                total += self.field(selection, parent, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                inner = self.schema.get_type(condition.name.value) if condition else parent
                total += self.selections(selection.selection_set, inner, page)
            elif isinstance(selection, FragmentSpreadNode):
                total += self.fragment(selection.name.value, page)
        return total

    def fragment(self, name: str, page: int | None) -> Figures:
        key = (name, page)
        if key in self.done:
            return self.done[key] or _NOTHING
        definition = self.fragments.get(name)
        if definition is None:
            return _NOTHING
        self.done[key] = None
        parent = self.schema.get_type(definition.type_condition.name.value)
        figures = self.selections(definition.selection_set, parent, page)
        self.done[key] = figures
        return figures

    def field(self, node: FieldNode, parent: GraphQLNamedType | None, page: int | None) -> Figures:
        name = node.name.value
        definition = _field(parent, name)
        aliases = 1 if node.alias else 0
        if name.startswith("__"):
            # Introspection: bounded by the schema's size; its nesting is not counted as depth.
            inner = self._inner(node, None, None)
            return Figures(1 + inner.fields, 0, aliases + inner.aliases, 1)
        child_page = self._page(node, definition)
        inner = self._inner(node, definition, child_page)
        depth = 1 + inner.depth if node.selection_set else 0
        fixed = _fixed_cost(definition)
        if fixed is not None:
            cost = fixed
        elif definition is not None and _is_list(definition):
            cost = (LIST_SIZE if page is None else page) * (1 + inner.cost)
        else:
            cost = 1 + inner.cost
        too_long = self._too_long(node, definition) or inner.too_long
        return Figures(1 + inner.fields, depth, aliases + inner.aliases, cost, too_long)

    def _too_long(
        self, node: FieldNode, definition: GraphQLField | None
    ) -> tuple[str, int, int] | None:
        """The first list argument, or list field of an input argument, given more entries
        than its MAX_ITEMS."""
        for argument in node.arguments or ():
            name = argument.name.value
            found = definition.args.get(name) if definition is not None else None
            if found is not None:
                too_long = self._too_long_value(name, found, argument.value)
                if too_long is not None:
                    return too_long
        return None

    def _too_long_value(
        self, name: str, element: GraphQLArgument | GraphQLInputField, value: Any
    ) -> tuple[str, int, int] | None:
        """Whether a value (a node of the document, or a variable's raw value) is over a limit."""
        if isinstance(value, VariableNode):
            value = self.variables.get(value.name.value)
        limit = _metadata(element).get(MAX_ITEMS)
        items = value.values if isinstance(value, ListValueNode) else value
        if isinstance(limit, int) and isinstance(items, list | tuple) and len(items) > limit:
            return name, limit, len(items)
        kind = _input_object(element.type)
        if kind is None:
            return None
        # Its fields, as deep as the input types nest (ours: one level, TrendFilter's lists).
        if isinstance(value, ObjectValueNode):
            given: list[tuple[Any, Any]] = [(f.name.value, f.value) for f in value.fields]
        else:
            given = list(value.items()) if isinstance(value, Mapping) else []
        for field_name, field_value in given:
            field = kind.fields.get(field_name)
            too_long = (
                None if field is None else self._too_long_value(field_name, field, field_value)
            )
            if too_long is not None:
                return too_long
        return None

    def _inner(self, node: FieldNode, definition: GraphQLField | None, page: int | None) -> Figures:
        if node.selection_set is None:
            return _NOTHING
        child = get_named_type(definition.type) if definition is not None else None
        return self.selections(node.selection_set, child, page)

    def _page(self, node: FieldNode, definition: GraphQLField | None) -> int | None:
        """The page size a connection field asks for: its `first`, or the argument's default."""
        if definition is None or PAGE_ARGUMENT not in definition.args:
            return None
        value: Any = definition.args[PAGE_ARGUMENT].default_value
        for argument in node.arguments or ():
            if argument.name.value == PAGE_ARGUMENT:
                value = self._value(argument.value)
        if not isinstance(value, int) or isinstance(value, bool):
            return 0  # not a page size: the resolver refuses it, and nothing is read
        return min(max(value, 0), self.max_page)

    def _value(self, node: ValueNode) -> Any:
        if isinstance(node, VariableNode):
            return self.variables.get(node.name.value)
        if isinstance(node, IntValueNode):
            # Longer than any page size (and than int() parses): the largest page, at most.
            return int(node.value) if len(node.value) < 10 else self.max_page
        return None


def _field(parent: GraphQLNamedType | None, name: str) -> GraphQLField | None:
    fields = getattr(parent, "fields", None)
    return fields.get(name) if isinstance(fields, Mapping) else None


def _is_list(field: GraphQLField) -> bool:
    kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return isinstance(kind, GraphQLList)


def _input_object(kind: GraphQLInputType) -> GraphQLInputObjectType | None:
    """The input object type of a value that is one (not a list of them)."""
    inner = kind.of_type if isinstance(kind, GraphQLNonNull) else kind
    return inner if isinstance(inner, GraphQLInputObjectType) else None


def _metadata(element: GraphQLField | GraphQLArgument | GraphQLInputField) -> Mapping[Any, Any]:
    """What the Strawberry definition of a field or argument was declared with."""
    definition = element.extensions.get("strawberry-definition")
    metadata = getattr(definition, "metadata", None)
    return metadata if isinstance(metadata, Mapping) else {}


def _fixed_cost(field: GraphQLField | None) -> int | None:
    cost = _metadata(field).get(COST) if field is not None else None
    return cost if isinstance(cost, int) else None
