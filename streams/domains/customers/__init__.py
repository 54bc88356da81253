"""The customers domain: row changes of ``public.customers`` as past-tense customer events."""

from streams.domains.customers.transforms import SOURCE_TABLE, TOPIC, customer_events, register

__all__ = ["SOURCE_TABLE", "TOPIC", "customer_events", "register"]
