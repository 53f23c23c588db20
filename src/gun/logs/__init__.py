"""Logs: logplex frames in, metrics (l2met conventions) and archives out."""
