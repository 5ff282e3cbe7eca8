"""The report of a reproduction: its facts, sections, HTML and PDF."""
