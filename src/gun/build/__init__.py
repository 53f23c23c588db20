"""Turning an app's source into a slug: packing, safe unpacking and the stores slugs live in."""
