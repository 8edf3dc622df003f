"""Pushed alerts: rules evaluated off the dispatch path, deliveries retried with backoff."""
