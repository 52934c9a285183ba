"""RQ job functions: thin callers of trends_gql services."""
