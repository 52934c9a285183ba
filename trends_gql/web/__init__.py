"""The Starlette application and its HTTP protections."""
