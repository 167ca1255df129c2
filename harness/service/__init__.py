"""The bundled reference counter service (the reference HTTP contract in DESIGN.md)."""

# the store URL may come by environment instead of --store-url, so that its credentials stay off argv
STORE_URL_ENV = "COUNTERBENCH_STORE_URL"
