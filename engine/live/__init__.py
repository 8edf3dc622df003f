"""Live read models and signals: events, the Redis stream, metrics, the overview and progress."""
