"""The gRPC service of read-your-writes: ``WaitApplied`` and ``ReadAfter`` (``changefeed serve``)."""
