"""What every agency adapter runs the same way: ``server`` (settings, the grpc.aio server,
the bus pieces, start/rollback/stop order, the signal-driven run loop), ``cli`` (the
``zhol adapter AGENCY seed|serve`` arguments and handlers) and ``service`` (the
servicer's reader/writer stores and single writer thread, the error-to-status mapping,
request parsing). An adapter's own server.py, cli.py and service.py keep only what is
specific to its agency: RPCs, servicer, event handlers, seed options and the lines it prints.
"""
