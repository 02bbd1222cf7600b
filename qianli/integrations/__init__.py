"""Connectors to the customer's own systems (WeCom, ...). Layer: adapters - typed clients with a base
URL setting, no web framework and no models."""
