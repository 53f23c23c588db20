"""gun: a Heroku-style platform that teams run on their own machines."""

__version__ = "0.1.0"
