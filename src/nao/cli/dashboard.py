"""``nao dashboard``: browse a run in optuna-dashboard (extra ``[dashboard]``).

    nao dashboard runs/nb201-nao                          # serves http://127.0.0.1:8080/dashboard/ until Ctrl-C
    nao dashboard runs/nb201-nao --port 8081 --host 0.0.0.0
    nao dashboard runs/nb201-nao --export-only run.log    # the Optuna journal storage file, nothing served
"""

from __future__ import annotations

import argparse
import signal
import sys
import time


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("dashboard", help="browse a run in optuna-dashboard (needs the [dashboard] extra)",
                       description="Mirror a run's journal into an Optuna journal storage (architecture tokens as "
                                   "parameters, the objective as the value, the architecture and metrics as user "
                                   "attributes) and serve optuna-dashboard on it; new evaluations of a running "
                                   "search appear as they are journaled.")
    p.add_argument("run_dir", metavar="DIR", help="a run directory written by nao search")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0 for every interface)")
    p.add_argument("--export-only", metavar="FILE", default=None,
                   help="write the Optuna journal storage to FILE (readable by optuna.storages.JournalStorage and "
                        "optuna-dashboard) and start nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nao.dashboard import Dashboard, export_storage

    if args.export_only:
        n = export_storage(args.run_dir, args.export_only)
        print(f"wrote {args.export_only}: {n} trials (optuna-dashboard {args.export_only} serves it)")
        return 0
    # SIGTERM (a service manager, `kill`) stops as cleanly as Ctrl-C: the temporary mirror is removed. Set
    # before serving starts, so a client that sees the server up can never kill it by the default action.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    dash = None
    try:
        dash = Dashboard(args.run_dir, host=args.host, port=args.port)
        print(f"{dash.mirror.count} trials of {args.run_dir} at {dash.url} (Ctrl-C to stop)", file=sys.stderr)
        dash.start()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        if dash is not None:
            dash.close()  # stops serving, removes the temporary mirror
        signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
