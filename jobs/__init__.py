"""RQ job functions: thin callers of trends_gql services.

This folder ships as trends_gql.jobs (pyproject.toml's package-dir). Its modules import each other
relatively, so that tools that only see folders (mypy) can check it as `jobs` too.
"""
