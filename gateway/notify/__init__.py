"""Notifications: the portal inbox, email through SMTP, signed webhooks."""
