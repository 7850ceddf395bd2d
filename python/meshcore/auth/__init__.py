"""End-user authentication support for the data path: remote JWKS fetching."""
