"""Review across every session: a search index derived from the session files, and its query syntax.

Headless (no Textual): `index.ReviewIndex` and `query.parse_query` serve the
CLI (`studio search`, `studio export`) and the TUI gallery alike.
"""
