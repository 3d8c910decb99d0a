"""IMAP4rev1 server protocol, sans-I/O."""
