"""Storage: the registry index (SQLAlchemy Core over SQLite or PostgreSQL) and its migrations."""
