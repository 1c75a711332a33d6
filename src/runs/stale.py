"""``python -m src.runs.stale [--close]``: the runs a killed process left RUNNING.

A process stopped by SIGKILL, an out-of-memory kill or a power loss cannot close its
runs, so they stay RUNNING in the store. Every run records the host and process id of
the process that trains it (tags ``host`` and ``pid``). A RUNNING run is stale when
its process is gone: on this host, when no process has that id any more; on another
host (or without those tags), when it started more than ``--older-than`` hours ago
(without that option such runs are listed as unknown and left alone).

The command lists every RUNNING run of the store (``--experiment`` for one experiment)
with its verdict. With ``--close`` it marks each stale run ``--status`` (FAILED, or
KILLED) and tags it ``closed_as_stale`` with the reason. ``--uri`` names the store
(default: ``$MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db``).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import time
from pathlib import Path

from src.runs.contract import TAG_HOST, TAG_PID, TAG_STALE
from src.runs.tracking import resolve_tracking_uri, search_all, tune_sqlite


def process_gone(pid: int) -> bool:
    """True when no process of this host has id ``pid``."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's process
        return False
    return False


def verdict(run, host: str, now: float, older_than_hours: float | None) -> str | None:
    """Why ``run`` is stale, or None when it may still be training."""
    tags = run.data.tags
    age_hours = (now - run.info.start_time / 1000) / 3600
    if tags.get(TAG_HOST) == host and tags.get(TAG_PID, "").isdigit():
        if process_gone(int(tags[TAG_PID])):
            return f"its process {tags[TAG_PID]} on {host} is gone"
        return None
    if older_than_hours is not None and age_hours > older_than_hours:
        where = f"on {tags[TAG_HOST]}" if TAG_HOST in tags else "on an unknown host"
        return f"started {age_hours:.1f} h ago {where}, over --older-than {older_than_hours:g} h"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.runs.stale", description=__doc__.split("\n\n")[1])
    parser.add_argument("--uri", default=None, help="tracking store (default: $MLFLOW_TRACKING_URI or sqlite)")
    parser.add_argument("--experiment", default=None, help="one experiment's runs (default: every experiment)")
    parser.add_argument("--older-than", type=float, default=None, metavar="HOURS", help="stale age on other hosts")
    parser.add_argument("--close", action="store_true", help="close the stale runs")
    parser.add_argument("--status", choices=("FAILED", "KILLED"), default="FAILED", help="status of a closed run")
    args = parser.parse_args(argv)
    uri = resolve_tracking_uri(args.uri)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///").split("?", 1)[0]).exists():
        print(f"error: --uri: no sqlite store at {uri}", file=sys.stderr)
        return 1

    from mlflow.tracking import MlflowClient

    tune_sqlite()
    client = MlflowClient(uri)
    if args.experiment is None:
        experiments = client.search_experiments()
    else:
        experiment = client.get_experiment_by_name(args.experiment)
        if experiment is None:
            print(f"error: --experiment: no experiment named {args.experiment!r} in {uri}", file=sys.stderr)
            return 1
        experiments = [experiment]
    host, now = socket.gethostname(), time.time()
    found = closed = 0
    for experiment in experiments:
        for run in search_all(client, experiment.experiment_id, "attributes.status = 'RUNNING'"):
            found += 1
            reason = verdict(run, host, now, args.older_than)
            where = f"{run.data.tags.get(TAG_HOST, '?')}:{run.data.tags.get(TAG_PID, '?')}"
            if reason:
                state = f"stale: {reason}"
            elif run.data.tags.get(TAG_HOST) == host:
                state = "its process is alive"
            else:
                state = "another host's: judged by age with --older-than"
            print(f"{run.info.run_id}  {experiment.name}/{run.info.run_name}  {where}  {state}")
            if reason and args.close:
                client.set_tag(run.info.run_id, TAG_STALE, reason)
                client.set_terminated(run.info.run_id, args.status)
                closed += 1
    print(f"{found} RUNNING run(s), {closed} closed as {args.status}" if args.close else f"{found} RUNNING run(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
