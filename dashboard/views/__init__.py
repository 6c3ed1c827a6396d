"""Dashboard pages: each reads its controls, calls the engine, draws the result."""
