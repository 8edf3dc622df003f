"""The leader's runtime: leadership, hot state, dispatcher, claims, settlement, pauses, resets,
due starts, fan-out and recovery."""
