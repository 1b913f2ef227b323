"""The reliability and security suite: `python -m eval.reliability [--quick] [--report DIR]`.

Runs real processes on this machine (the service, a stub model server, Redis, PostgreSQL, a Chroma server,
Chromium) and tries to break the service's promises: nothing lost, never a hung stream, no one reads another
shopper's conversation, no write without confirmation. Each part adds rows (what was tried, how many, what broke)
and counts to one Tally; the last line printed is the Tally's counters.
"""
