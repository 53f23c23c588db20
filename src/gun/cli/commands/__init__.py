"""The `gun` commands, a module per vocabulary word."""
