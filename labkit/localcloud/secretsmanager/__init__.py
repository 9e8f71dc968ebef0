"""Secrets Manager: AWS's answers where moto's differ (a secret scheduled for deletion, DeleteSecret's parameters)."""
