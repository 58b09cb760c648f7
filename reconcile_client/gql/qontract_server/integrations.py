"""Model of `integrations.gql`: each integration's allowed datafile schemas."""

from pydantic import BaseModel

from reconcile_client.operations import Operation


class Integration(BaseModel):
    """An /app-sre/integration-1.yml datafile: its name and the schemas it may query."""

    name: str
    schemas: list[str]


class IntegrationsData(BaseModel):
    """Data of query Integrations."""

    integrations: list[Integration] | None


OPERATION = Operation("qontract_server/integrations.gql", IntegrationsData)
