"""Authentication and authorization: the principal, OIDC, tokens, Casbin (access issue)."""
