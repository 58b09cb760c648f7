"""The form of a document that validation sees: tokens without layout, aliases renamed.

Two documents with the same form get the same validation outcome, so a valid form lets a new
document (new whitespace, comments or aliases) skip validation. An alias that is also the name
of a field in the document is kept; any other alias becomes `#<n>` by first appearance (not a
GraphQL name, so it equals no field name): which response names are equal is preserved, and so
is whether a field has an alias, the two things validation reads of aliases.
"""

import json

from graphql import DocumentNode, ExecutableDefinitionNode, FieldNode, SelectionSetNode
from graphql.language import TokenKind

_STRINGS = frozenset({TokenKind.STRING, TokenKind.BLOCK_STRING})


def validation_form(document: DocumentNode) -> str | None:
    """The form of `document` (None when it was parsed without locations); linear in its size."""
    if document.loc is None:
        return None
    aliases, field_names = _aliases(document)
    renamed: dict[str, str] = {}
    parts: list[str] = []
    token = document.loc.start_token.next
    while token is not None and token.kind is not TokenKind.EOF:
        kind = token.kind
        if kind is TokenKind.COMMENT:
            pass
        elif token.value is not None and token.start in aliases:
            alias = token.value
            kept = alias in field_names
            parts.append(alias if kept else renamed.setdefault(alias, f"#{len(renamed)}"))
        elif kind in _STRINGS:
            parts.append(json.dumps(token.value))
        else:
            parts.append(kind.value if token.value is None else token.value)
        token = token.next
    return " ".join(parts)


def _aliases(document: DocumentNode) -> tuple[set[int], set[str]]:
    """Where each alias starts in the text, and the names of all fields selected."""
    starts: set[int] = set()
    names: set[str] = set()
    pending: list[SelectionSetNode] = [
        definition.selection_set
        for definition in document.definitions
        if isinstance(definition, ExecutableDefinitionNode)
    ]
    while pending:
        for selection in pending.pop().selections:
            if isinstance(selection, FieldNode):
                names.add(selection.name.value)
                if selection.alias is not None and selection.alias.loc is not None:
                    starts.add(selection.alias.loc.start)
            selection_set = getattr(selection, "selection_set", None)
            if selection_set is not None:
                pending.append(selection_set)
    return starts, names
