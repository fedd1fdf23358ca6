"""SMS Partner: the API client (and, as it grows, what it reads about the accounts)."""
