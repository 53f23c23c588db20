"""The agent: makes an instance match what meta wants."""
