"""Command line, composition root and embedded servers."""
