"""HTTP caching of the public pages for anonymous visitors (issue 15)."""
