"""trends-gql: a GraphQL server for AI-trend records."""
