"""A local API Gateway emulator: executes a REST API definition the way API Gateway does."""
