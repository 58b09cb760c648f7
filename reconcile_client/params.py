"""Run parameters of an integration: a pydantic model, validated when the command line is read."""

from pydantic import BaseModel, ConfigDict


class PydanticRunParams(BaseModel):
    """Base of every integration's parameters: frozen, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")
