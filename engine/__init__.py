"""The EDM dispatch engine, split by role: domain, infra, templating, store, dispatch, live, providers."""
