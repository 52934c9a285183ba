"""Registered operations: read from a file by `trends persist`, kept in the database.

With PERSISTED_QUERIES_ONLY only these run (schema/persisted.py); in any mode a client may send
the key of one instead of its document. A file is a GraphQL document of named operations (each
is stored with the fragments it uses in its canonical text, under that text's SHA-256), Apollo's
persisted-query manifest, or Relay's map of ids to documents (stored as given, under their
ids). A document sent as text is recognised by its canonical text, whatever its layout. Every
operation is validated against the schema; a file is registered whole or not at all.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    Lexer,
    OperationDefinitionNode,
    Source,
    TokenKind,
    Visitor,
    parse,
    print_ast,
    validate,
    visit,
)
from sqlalchemy.orm import Session
from sqlmodel import col

from trends_gql.core.db import utcnow
from trends_gql.core.errors import BadUserInput
from trends_gql.core.models import PERSISTED_KEY_MAX, PersistedOperation

APOLLO_MANIFEST = "apollo-persisted-query-manifest"


def sha256_hex(text: str) -> str:
    """The SHA-256 of a document's text in hex, as APQ clients compute it."""
    return hashlib.sha256(text.encode()).hexdigest()


def canonical(document: DocumentNode) -> str:
    """A document as graphql-core prints it (as graphql-js's `print` does), operations first,
    then fragments by name: the same text for documents that differ only in layout, comments
    or the order of their fragments."""
    definitions = document.definitions
    operations = [d for d in definitions if isinstance(d, OperationDefinitionNode)]
    fragments = sorted(
        (d for d in definitions if isinstance(d, FragmentDefinitionNode)),
        key=lambda d: d.name.value,
    )
    return print_ast(DocumentNode(definitions=(*operations, *fragments)))


@dataclass(frozen=True)
class Operation:
    """An operation to register: the key clients send for it, its name, its document and the
    SHA-256 of the document's canonical text."""

    key: str
    name: str | None
    body: str
    digest: str


@dataclass(frozen=True)
class Registration:
    """What `persist_file` registered: the file's operations, and how many were new."""

    operations: list[Operation]
    added: int


def persist_file(session: Session, path: Path, schema: GraphQLSchema) -> Registration:
    """Register the operations of a file, all or none; BadUserInput naming what is wrong."""
    operations = read_operations(path, schema)
    return Registration(operations, register_operations(session, operations))


def read_operations(path: Path, schema: GraphQLSchema) -> list[Operation]:
    """The operations of a file: JSON (`.json`) is a manifest, anything else a document."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise BadUserInput(f"not UTF-8 text (byte {exc.start})") from None
    if path.suffix.lower() == ".json":
        operations = _from_manifest(text, schema)
    else:
        operations = _from_document(text, schema)
    if not operations:
        raise BadUserInput("no operations to register")
    return operations


def _located(error: GraphQLError) -> str:
    """A GraphQL error in one line, starting with where it is."""
    if not error.locations:
        return error.message
    where = error.locations[0]
    return f"line {where.line}, column {where.column}: {error.message}"


def _checked(text: str, schema: GraphQLSchema, label: str = "") -> DocumentNode:
    """The parsed document, valid for the schema; BadUserInput with the first problem."""
    try:
        document = parse(text)
    except GraphQLError as exc:
        raise BadUserInput(f"{label}{_located(exc)}") from None
    errors = validate(schema, document)
    if errors:
        raise BadUserInput(f"{label}{_located(errors[0])}")
    return document


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _from_document(text: str, schema: GraphQLSchema) -> list[Operation]:
    if Lexer(Source(text)).advance().kind is TokenKind.EOF:  # comments at most
        return []
    document = _checked(text, schema)  # also: fragments defined, each used, names unique
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    found = []
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        if definition.name is None:
            line = definition.loc.start_token.line if definition.loc else 1
            raise BadUserInput(f"line {line}: an operation without a name: name every operation")
        used = _fragments_of(definition, fragments)
        body = canonical(DocumentNode(definitions=(definition, *(fragments[n] for n in used))))
        digest = sha256_hex(body)
        found.append(Operation(digest, definition.name.value, body, digest))
    return found


def _fragments_of(
    operation: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> set[str]:
    """The names of the fragments an operation spreads, directly or through other fragments."""
    used: set[str] = set()
    pending: list[OperationDefinitionNode | FragmentDefinitionNode] = [operation]
    while pending:
        spreads = _Spreads()
        visit(pending.pop(), spreads)
        for name in spreads.names - used:
            used.add(name)
            pending.append(fragments[name])  # defined: the document was validated
    return used


def _from_manifest(text: str, schema: GraphQLSchema) -> list[Operation]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadUserInput(
            f"not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None
    entries: list[tuple[str, Any, Any]]
    if isinstance(data, dict) and "format" in data:
        if data["format"] != APOLLO_MANIFEST or data.get("version") != 1:
            raise BadUserInput(
                f"manifest format {data['format']!r} version {data.get('version')!r}: "
                f"only {APOLLO_MANIFEST!r} version 1 is known"
            )
        listed = data.get("operations")
        if not isinstance(listed, list):
            raise BadUserInput("the manifest has no list of operations")
        entries = []
        for number, entry in enumerate(listed, 1):
            if not isinstance(entry, dict):
                raise BadUserInput(f"operation {number}: not an object")
            label = f"operation {number} ({entry.get('name') or entry.get('id')})"
            entries.append((label, entry.get("id"), entry.get("body")))
    elif isinstance(data, dict):
        entries = [(f"operation {key!r}", key, body) for key, body in data.items()]
    else:
        raise BadUserInput("neither Apollo's persisted-query manifest nor Relay's map of ids")
    operations: dict[str, Operation] = {}
    for label, key, body in entries:
        operation = _listed(label, key, body, schema)
        if operations.setdefault(key, operation) != operation:
            raise BadUserInput(f"{label}: id {key!r} is listed twice with different documents")
    return list(operations.values())


def _listed(label: str, key: Any, body: Any, schema: GraphQLSchema) -> Operation:
    """An operation of a manifest, checked: an id, one operation in its body, valid."""
    if not isinstance(key, str) or not 0 < len(key) <= PERSISTED_KEY_MAX:
        raise BadUserInput(
            f"{label}: the id must be a string of 1 to {PERSISTED_KEY_MAX} characters"
        )
    if not isinstance(body, str):
        raise BadUserInput(f"{label}: the body must be a string, a GraphQL document")
    document = _checked(body, schema, f"{label}: ")
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) != 1:
        raise BadUserInput(f"{label}: the body must hold one operation, not {len(operations)}")
    name = operations[0].name
    return Operation(key, name.value if name else None, body, sha256_hex(canonical(document)))


def register_operations(session: Session, operations: list[Operation]) -> int:
    """Store the operations not stored yet, all or none; how many were new.

    A key stored with another document is refused (BadUserInput): a key names one document.
    """
    keys = [operation.key for operation in operations]
    stored: dict[str, str] = dict(
        session.execute(
            sa.select(col(PersistedOperation.key), col(PersistedOperation.body)).where(
                col(PersistedOperation.key).in_(keys)
            )
        ).all()
    )
    now = utcnow()
    new = []
    for operation in operations:
        if operation.key not in stored:
            new.append(
                PersistedOperation(
                    key=operation.key,
                    name=operation.name,
                    body=operation.body,
                    body_sha256=operation.digest,
                    created_at=now,
                )
            )
        elif stored[operation.key] != operation.body:
            raise BadUserInput(
                f"operation {operation.name or operation.key}: id {operation.key!r} is "
                "registered with another document"
            )
    session.add_all(new)
    session.commit()
    return len(new)


def registered_body(session: Session, key: str) -> str | None:
    """The document registered under `key`, or None."""
    return session.scalar(
        sa.select(col(PersistedOperation.body)).where(col(PersistedOperation.key) == key)
    )


def is_registered_digest(session: Session, digest: str) -> bool:
    """Whether a registered operation has this canonical digest (`canonical`'s SHA-256)."""
    found = session.scalar(
        sa.select(col(PersistedOperation.id))
        .where(col(PersistedOperation.body_sha256) == digest)
        .limit(1)
    )
    return found is not None
