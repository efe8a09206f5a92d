"""The GraphQL edge: schema, types, operations, loaders, context, errors."""
