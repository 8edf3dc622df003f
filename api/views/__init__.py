"""Handlers, one module per resource; each registers its routes on the shared router."""
