"""On-demand health probes of a sending service's credentials (cheap, authenticated, sends nothing)."""
