"""``changefeed dashboard``: a live page of connectors, tables, sources, workers and schemas.

``collect`` reads the stack with the functions the CLI's status/lag/conflicts/dlq commands use,
``history`` keeps 15 minutes of it for rates and charts, ``page`` renders HTML on the server, and
``server`` serves it with a server-sent-events feed (aiohttp) that a small script swaps in.
"""
