"""Infrastructure every layer uses: clock, settings, database, named SQL, secrets, passwords."""
