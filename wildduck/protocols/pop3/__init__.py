"""POP3 (RFC 1939 and its extensions), sans-I/O: see :mod:`wildduck.protocols.pop3.server`."""
