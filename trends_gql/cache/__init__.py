"""The response and resolver cache in Redis, with an in-process copy."""
