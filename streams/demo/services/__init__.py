"""The demo source services (customers on PostgreSQL, orders on MariaDB): schema and CDC logins."""
