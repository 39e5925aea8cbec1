"""``annscale concat IN... -o OUT``: concatenate stored datasets along obs, on disk.

Runs :func:`annscale.concat_on_disk`: inputs are opened lazily and the result is written
chunk by chunk, so memory stays bounded whatever the number and size of the inputs.
``--keys`` default to the input file names without extension; ``--label`` records them in
an obs column, ``--index-unique SEP`` appends them to obs names. ``--scheduler`` runs the
job on a dask scheduler (``threads``, ``processes``, ``synchronous`` or the address of a
distributed scheduler, whose workers must reach the inputs and the output).
``--dry-run`` prints the plan (inputs, cells, vars, obs columns to reconcile, estimated
size and chunks) and writes nothing. ``--resume`` (zarr outputs) finishes a run of the same
command that was killed or failed, reusing the chunks it had written.
"""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from typing import Any

from .arguments import add_output_options, add_storage_option, new_command
from .output import Console, UsageError
from .stores import (
    expand_paths,
    output_kind,
    prepare_output,
    storage_options,
)

__all__ = ["add_parser", "run"]

STRATEGIES = ("same", "unique", "first", "only")
LOCAL_SCHEDULERS = ("threads", "processes", "synchronous")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "concat",
        "concatenate stores along obs into one (streamed; --dry-run: the plan)",
        __doc__,
        run,
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="input stores or globs, in order")
    add_output_options(p, compression=False)  # concat_on_disk writes anndata's defaults
    p.add_argument("--join", choices=("inner", "outer"), default="inner", help="vars to keep")
    p.add_argument("--label", help="obs column recording each cell's input key")
    p.add_argument("--keys", help="comma-separated input keys (default: file names)")
    p.add_argument("--index-unique", metavar="SEP", help="make obs names unique: name SEP key")
    p.add_argument("--merge", choices=STRATEGIES, help="how var annotations are kept")
    p.add_argument("--uns-merge", choices=STRATEGIES, help="how uns is kept")
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask scheduler: threads, processes, synchronous or tcp://host:port",
    )
    p.add_argument("--resume", action="store_true", help="finish an interrupted zarr write")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: the plan as JSON")
    add_storage_option(p)


def _inputs_and_keys(args: argparse.Namespace, options: dict[str, Any] | None):
    from ..combine.collection import expand_inputs

    urls = expand_paths(args.inputs, options)
    keys = None
    if args.keys is not None:
        keys = [k.strip() for k in args.keys.split(",")]
        if len(keys) != len(urls):
            raise UsageError(f"--keys names {len(keys)} keys for {len(urls)} inputs")
    try:
        inputs, keys = expand_inputs(urls, keys=keys, storage_options=options)
    except ValueError as e:  # e.g. two inputs with the same file name
        raise UsageError(str(e).replace("`keys=`", "--keys")) from None
    return [str(i) for i in inputs], keys


def _dry_run(args, console, urls, keys, options) -> int:
    from .plan import build_plan, render_plan

    with console.counting(len(urls), "reading input metadata", "files") as bar:
        plan = build_plan(
            urls,
            keys,
            join=args.join,
            label=args.label,
            index_unique=args.index_unique,
            options=options,
            on_opened=bar.update,
        )
    if args.json:
        console.result(json.dumps({"output": args.output, **plan.as_dict()}, indent=2))
    else:
        for line in render_plan(plan, args.output):
            console.result(line)
    return 0


def _concat_options(args: argparse.Namespace, keys: list[str], options) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "join": args.join,
        "merge": args.merge,
        "uns_merge": args.uns_merge,
        "label": args.label,
        "keys": keys,
        "index_unique": args.index_unique,
        "storage_options": options,
    }
    if args.resume:
        kwargs["resume"] = True
    return kwargs


def run(args: argparse.Namespace, console: Console) -> int:
    import annscale

    from .._settings import settings
    from ..progress import is_terminal

    options = storage_options(args)
    if args.json and not args.dry_run:
        raise UsageError("--json goes with --dry-run")
    urls, keys = _inputs_and_keys(args, options)
    if args.dry_run:
        if args.resume:
            raise UsageError("--resume and --dry-run exclude each other")
        return _dry_run(args, console, urls, keys, options)
    if args.resume and output_kind(args.output) != "zarr":
        raise UsageError("--resume applies to zarr outputs (.zarr, .zarr.zip) only")
    loc, _ = prepare_output(args, options, inputs=urls)
    kwargs = _concat_options(args, keys, options)
    distributed = args.scheduler is not None and "://" in args.scheduler
    if args.scheduler is not None and not distributed and args.scheduler not in LOCAL_SCHEDULERS:
        raise UsageError(
            f"--scheduler {args.scheduler!r}: expected one of {', '.join(LOCAL_SCHEDULERS)} "
            "or the address of a distributed scheduler (tcp://host:port)"
        )
    overrides: dict[str, Any] = {
        # distributed runs tasks elsewhere: show distributed's bar on a terminal instead
        "progress": distributed and not console.quiet and is_terminal(console.err)
    }
    if args.scheduler is not None:
        overrides["scheduler"] = args.scheduler
    if args.zarr_format is not None:
        overrides["zarr_write_format"] = args.zarr_format
    console.note(f"concatenating {len(urls)} inputs into {loc.url}")
    with ExitStack() as stack:
        stack.enter_context(settings.override(**overrides))
        if not distributed:
            stack.enter_context(console.tasks(f"writing {loc.url}"))
        try:
            annscale.concat_on_disk(urls, loc, **kwargs)
        finally:
            if distributed:
                from ..scheduler import close_clients

                close_clients()
    console.note(f"wrote {loc.url}")
    return 0
