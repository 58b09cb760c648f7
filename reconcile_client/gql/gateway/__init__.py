"""Operations against the qontract-gateway schema (schema/schema.graphql)."""
