"""Handlers: plain functions that apply one kind of Stripe event to the records."""
