"""The embeddable screens: one module per screen, each rendered in the embed shell (inside a
parent's iframe, authorised by the session token) or the member console (authorised by the member
session), from templates in templates/components/."""
