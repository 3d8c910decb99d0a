"""Sans-I/O protocol implementations: bytes in, events out. No trio, no storage, no logging configuration."""
