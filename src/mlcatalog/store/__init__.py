"""The relational store: mapped tables, engine and sessions, batch reads, migrations."""
