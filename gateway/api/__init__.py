"""JSON API routes, one module per controller, mounted at Dittofeed's paths."""
