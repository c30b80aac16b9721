"""The citizen portal: a server-rendered web application, the information system of
subsystem ``KZ/GOV/MDDIAI/portal``, that reads every page over the bus through its own
gateway and stores nothing of the citizen's (docs/portal.md)."""
