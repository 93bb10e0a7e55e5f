"""Claims on backlog items and the certification of contributors."""
