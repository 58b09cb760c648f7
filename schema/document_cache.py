"""Parsed and validated documents by query text, bounded in entries and in estimated bytes."""

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

# graphql-core keeps every token and location: measured up to ~330 bytes per character of text.
BYTES_PER_CHARACTER = 512


@dataclass
class CachedDocument:
    """A parsed document and, once validated, its validation errors and the schema they are for."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None
    validated_for: GraphQLSchema | None = None


class DocumentStore:
    """An LRU of documents by query text; a document too large for the byte budget is not kept."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, query: str) -> CachedDocument | None:
        """The cached document for `query`, now the most recently used."""
        entry = self._entries.get(query)
        if entry is not None:
            self._entries.move_to_end(query)
        return entry

    def put(self, query: str, document: DocumentNode) -> CachedDocument:
        """Keep `document` when it fits, evicting the least recently used; its entry either way."""
        entry = CachedDocument(document)
        cost = len(query) * BYTES_PER_CHARACTER
        if cost > self.max_bytes or self.max_entries < 1:
            return entry
        while self._entries and (
            self.bytes + cost > self.max_bytes or len(self._entries) >= self.max_entries
        ):
            evicted, _ = self._entries.popitem(last=False)
            self.bytes -= len(evicted) * BYTES_PER_CHARACTER
        self._entries[query] = entry
        self.bytes += cost
        return entry


class DocumentCache(SchemaExtension):
    """Parse and validate each distinct document once while it stays in `store`."""

    def __init__(self, store: DocumentStore) -> None:
        self.store = store
        self.entry: CachedDocument | None = None

    def on_parse(self) -> Iterator[None]:
        """The cached document, or a fresh parse (a syntax error is left to Strawberry)."""
        context = self.execution_context
        query = context.query
        if query:
            self.entry = self.store.get(query)
            if self.entry is None:
                try:
                    document = parse(query, **context.parse_options)
                except GraphQLError:
                    document = None
                if document is not None:
                    self.entry = self.store.put(query, document)
        if self.entry is not None:
            context.graphql_document = self.entry.document
        yield

    def on_validate(self) -> Iterator[None]:
        """The document's validation errors, computed on its first use."""
        context = self.execution_context
        entry = self.entry
        if entry is not None and context.graphql_document is entry.document:
            schema = context.schema._schema
            if entry.errors is None or entry.validated_for is not schema:
                # the federated schema is replaced when qontract-server's schema changes
                entry.errors = validate_document(schema, entry.document, context.validation_rules)
                entry.validated_for = schema
            context.pre_execution_errors = entry.errors
        yield
