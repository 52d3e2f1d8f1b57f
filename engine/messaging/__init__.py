"""Messaging: rendering, templates, providers and deliveries."""
