"""Typed GraphQL operations: a `.gql` document under reconcile_client/gql and its result model."""

from dataclasses import dataclass
from importlib.resources import files
from typing import Generic, TypeVar

from pydantic import BaseModel

ResultT = TypeVar("ResultT", bound=BaseModel)


def load_document(relative_path: str) -> str:
    """The text of `reconcile_client/gql/<relative_path>`."""
    return files("reconcile_client").joinpath("gql", relative_path).read_text()


@dataclass(frozen=True)
class Operation(Generic[ResultT]):
    """A GraphQL document and the pydantic model its `data` validates into."""

    path: str
    result: type[ResultT]

    @property
    def document(self) -> str:
        """The operation's GraphQL text, read from the package."""
        return load_document(self.path)


@dataclass(frozen=True)
class Fragment(Generic[ResultT]):
    """A named fragment from a `.gql` file, spread into documents built at run time."""

    name: str
    path: str
    result: type[ResultT]

    @property
    def document(self) -> str:
        """The fragment definition."""
        return load_document(self.path)
