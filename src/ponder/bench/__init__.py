"""The benchmark grid runner, its resumable SQLite store, and reports."""
