"""Screens pushed over the dashboard: login and confirmation."""
