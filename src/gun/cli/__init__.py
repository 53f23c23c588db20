"""The `gun` command: seed syntax and flags, an HTTP client, output."""
