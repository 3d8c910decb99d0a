"""LMTP (RFC 2033) server protocol, sans-I/O."""
