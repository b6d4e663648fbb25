"""Accounts: users, organizations, memberships, roles and expert profiles."""
