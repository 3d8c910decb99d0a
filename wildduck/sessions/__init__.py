"""Trio glue: one task per connection drives one protocol object and calls domain services."""
