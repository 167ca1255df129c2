"""counterbench: prove under load that a counter loses no update."""

__version__ = "0.1.0"
