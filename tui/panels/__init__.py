"""Panels as pure functions of a snapshot: column layouts, row cells, sort keys and detail lines."""
