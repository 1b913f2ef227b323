"""The HTTP API: app factory, thin routers, auth, error shape."""
