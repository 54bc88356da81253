"""The downstream ``shipping`` service: its table mappings and the ``order_view`` enrichment."""

from streams.domains.shipping.mappings import CUSTOMERS_TABLE, ORDERS_TABLE, shipping_mappings
from streams.domains.shipping.sink import ShippingSink

__all__ = ["CUSTOMERS_TABLE", "ORDERS_TABLE", "ShippingSink", "shipping_mappings"]
