"""Storage roles as typing.Protocols. Adapters in ``wildduck.adapters`` implement them.

All port methods are ``async`` at this level; each is one unit of work (one thread hop, one transaction in the
SQLite adapter). Cancellation: a write that has started is never abandoned half-way; a cancelled caller may not
learn its outcome, but the store is always consistent.
"""
