"""MIME parsing, splitting for storage, recomposition, ENVELOPE and BODYSTRUCTURE (sans-I/O)."""
