"""Run parameters of an integration: a pydantic model, validated when the command line is read."""

from typing import Any, Self

from pydantic import BaseModel, ConfigDict


class PydanticRunParams(BaseModel):
    """Base of every integration's parameters: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    def copy_and_update(self, update: dict[str, Any]) -> Self:
        """A copy with the fields in `update` replaced (validated)."""
        return self.model_validate({**self.model_dump(), **update})

    def get(self, field: str) -> Any:
        """The value of `field`."""
        return getattr(self, field)
