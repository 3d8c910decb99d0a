"""wildduck: a mail server that keeps all mail in a database (a Python re-implementation of WildDuck)."""

__version__ = "0.1.0"
