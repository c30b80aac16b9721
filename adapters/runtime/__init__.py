"""What every agency adapter runs the same way: ``server`` (settings, the grpc.aio server,
the bus pieces, start/rollback/stop order, the signal-driven run loop) and ``cli`` (the
``zhol adapter AGENCY seed|serve`` arguments and handlers). An adapter's own server.py
and cli.py keep only what is specific to its agency: servicer, event handlers, seed
options and the lines it prints.
"""
