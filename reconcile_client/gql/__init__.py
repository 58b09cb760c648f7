"""GraphQL operations (`.gql`) and the pydantic models of their results, side by side."""
