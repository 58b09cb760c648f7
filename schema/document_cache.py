"""Parsed and validated documents by query text, and valid document forms, bounded in entries
and in estimated bytes."""

from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from graphql import DocumentNode, GraphQLError, GraphQLSchema, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from schema.document_form import validation_form

# graphql-core keeps every token and location: measured up to ~330 bytes per character of text.
BYTES_PER_CHARACTER = 512


@dataclass
class CachedDocument:
    """A parsed document and, once validated, its validation errors and the schema they are for."""

    document: DocumentNode
    errors: list[GraphQLError] | None = None
    validated_for: GraphQLSchema | None = None


class DocumentStore:
    """An LRU of documents by query text, and one of the forms (`validation_form`) that passed
    validation against `valid_for`; a document too large for the byte budget is not kept."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()
        self.form_bytes = 0
        self.valid_for: GraphQLSchema | None = None
        self._valid_forms: OrderedDict[str, None] = OrderedDict()

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

    def is_valid_form(self, form: str, schema: GraphQLSchema) -> bool:
        """True when a document of this form passed validation against `schema`."""
        if schema is not self.valid_for or form not in self._valid_forms:
            return False
        self._valid_forms.move_to_end(form)
        return True

    def add_valid_form(self, form: str, schema: GraphQLSchema) -> None:
        """Remember that `form` is valid for `schema` (forgetting the forms of another schema)."""
        if schema is not self.valid_for:
            self._valid_forms.clear()
            self.form_bytes = 0
            self.valid_for = schema
        if len(form) > self.max_bytes or self.max_entries < 1 or form in self._valid_forms:
            return
        while self._valid_forms and (
            self.form_bytes + len(form) > self.max_bytes
            or len(self._valid_forms) >= self.max_entries
        ):
            evicted, _ = self._valid_forms.popitem(last=False)
            self.form_bytes -= len(evicted)
        self._valid_forms[form] = None
        self.form_bytes += len(form)


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
        """The document's validation errors, computed on its first use unless its form is known
        to be valid (errors name the document's own aliases, so they are never shared)."""
        context = self.execution_context
        entry = self.entry
        if entry is not None and context.graphql_document is entry.document:
            schema = context.schema._schema
            if entry.errors is None or entry.validated_for is not schema:
                # the federated schema is replaced when qontract-server's schema changes
                entry.errors = self._validate(entry.document, schema)
                entry.validated_for = schema
            context.pre_execution_errors = entry.errors
        yield

    def _validate(self, document: DocumentNode, schema: GraphQLSchema) -> list[GraphQLError]:
        form = validation_form(document)
        if form is not None and self.store.is_valid_form(form, schema):
            return []
        errors = validate_document(schema, document, self.execution_context.validation_rules)
        if form is not None and not errors:
            self.store.add_valid_form(form, schema)
        return errors
