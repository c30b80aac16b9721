"""Zhol: an X-Road style interoperability data-exchange bus."""
