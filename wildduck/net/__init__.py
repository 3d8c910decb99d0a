"""Listeners: plain TCP, implicit TLS, STARTTLS upgrade, connection caps."""
