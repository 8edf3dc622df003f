"""Template sandbox and rendering, shared by template saves and by sends."""
