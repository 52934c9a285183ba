"""Identity in one place: users, server-side sessions, login limits, the staff permission."""
