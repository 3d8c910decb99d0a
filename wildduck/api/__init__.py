"""The HTTP API: WildDuck's paths and JSON shapes over the domain services (Quart-Trio on Hypercorn)."""
