"""Sharing a view: links, talks and presenting them, and the pages' settings as a link carries them."""
