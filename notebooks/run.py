"""Execute the notebooks top to bottom with the venv's Python kernel; fail on any cell error.

    python notebooks/run.py           # execute into a temp directory (`make notebooks`, CI)
    python notebooks/run.py --update  # execute, write outputs back (`make notebooks-update`)
    python notebooks/run.py 02_ab_readout.ipynb    # only some notebooks
    python notebooks/run.py --jobs 1  # one at a time (default: two at once)

The kernel is the Python running this script (the project's .venv): its ipykernel kernel spec
``python3`` is taken from this environment before any user-level one, and a ``python``
command in the spec is replaced by this interpreter. Committed notebooks must stay small
(figures as PNG, no widget state): the size of each is checked against ``--max-mb``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

HERE = Path(__file__).resolve().parent


def execute(path: Path, out_dir: Path, timeout: int, max_mb: float) -> float:
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    nb.metadata.pop("widgets", None)
    start = time.perf_counter()
    # cwd = the notebooks folder, as when a person opens the notebook there
    NotebookClient(nb, kernel_name="python3", timeout=timeout, allow_errors=False,
                   record_timing=False, resources={"metadata": {"path": str(path.parent)}}
                   ).execute()
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                 "language": "python"}
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for out in cell.get("outputs", []):
            out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    target = out_dir / path.name
    nbformat.write(nb, target)
    size = target.stat().st_size / 2**20
    print(f"{path.name}: {seconds:.0f} s, {size:.2f} MB -> {target}", flush=True)
    if size > max_mb:
        raise ValueError(f"{path.name} is {size:.2f} MB executed, more than {max_mb} MB")
    return seconds


def _execute_reporting(path: Path, out_dir: Path, timeout: int, max_mb: float
                       ) -> tuple[float, str | None]:
    """:func:`execute` in a worker process: (seconds, None), or (0, the error's text); the text
    crosses processes where some exception types (a cell error) would not pickle."""
    try:
        return execute(path, out_dir, timeout, max_mb), None
    except Exception as exc:  # a cell error (CellExecutionError), a timeout, too big
        return 0.0, f"{type(exc).__name__}: {exc}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("notebooks", nargs="*", help="notebook files (default: notebooks/*.ipynb)")
    ap.add_argument("--update", action="store_true",
                    help="write the executed notebooks back in place")
    ap.add_argument("--output-dir", help="where to write executed copies (default: a temp dir)")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                    help="notebooks executed at once (default: 2, or 1 on one core); most of "
                         "a notebook's time is single-threaded compilation, so two overlap well")
    ap.add_argument("--max-mb", type=float, default=1.0, help="largest executed notebook")
    args = ap.parse_args(argv)
    # the kernel spec of this environment (installed by ipykernel) before a user-level one
    os.environ["JUPYTER_PREFER_ENV_PATH"] = "1"
    paths = [Path(p) if Path(p).exists() else HERE / p for p in args.notebooks] or sorted(
        HERE.glob("[0-9]*.ipynb"))
    if not paths:
        raise SystemExit(f"no notebooks in {HERE}")
    failed = []
    total = 0.0
    wall = time.perf_counter()
    jobs = max(1, min(args.jobs, len(paths)))
    with tempfile.TemporaryDirectory(prefix="bayesconv-notebooks-") as tmp, \
            ProcessPoolExecutor(jobs) as pool:
        futures = {}
        # the later notebooks are the longer ones (05: several fits of the marriage data):
        # start them first so the parallel runs end at about the same time
        for path in sorted(paths, key=lambda p: p.name, reverse=True):
            out_dir = path.parent if args.update else Path(args.output_dir or tmp)
            out_dir.mkdir(parents=True, exist_ok=True)
            futures[pool.submit(_execute_reporting, path.resolve(), out_dir, args.timeout,
                                args.max_mb)] = path
        for future in as_completed(futures):
            path = futures[future]
            seconds, error = future.result()
            total += seconds
            if error is not None:
                failed.append(path.name)
                print(f"{path.name}: FAILED\n{error}", file=sys.stderr, flush=True)
    print(f"executed in {time.perf_counter() - wall:.0f} s wall ({total:.0f} s summed over "
          f"{jobs} processes); failed: {failed or 'none'}", flush=True)
    print(f"notebooks: {len(paths) - len(failed)} passed, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
