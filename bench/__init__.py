"""`make bench`: changefeed end to end against its peers and the stage ceilings, in one run."""
