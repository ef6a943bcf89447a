"""Jinja2 templates shipped with pmkb; a site overrides one with a file of the same name in its own templates/ folder."""
