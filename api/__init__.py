"""The aiohttp control API (`/api/v1`)."""
