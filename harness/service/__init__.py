"""The bundled reference counter service (the reference HTTP contract in DESIGN.md)."""
