"""Benchmark: peak memory of `prepare` on a 10 MB and a 100 MB corpus (it must not grow).

    python scripts/bench_prepare.py [--sizes-mb 10 100] [--num-workers N] [--vocab-size V]

It trains a tokenizer on the built-in corpus, then writes each corpus as BERT-format text files
made of the built-in documents, reshuffled on every repetition, in a temporary directory. Each
`prepare` runs in a fresh process; this one samples `/proc` every 20 ms and prints the peak of
the summed resident set size of that process and its worker processes (Linux only). Shared
library pages are counted once per process, so the sum overstates the memory in use.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from albert_jax.data.corpus import BuiltinCorpus, sentences
from albert_jax.data.tokenizer import Tokenizer

_FILE_BYTES = 10 << 20

_PREPARE = """
import sys
from albert_jax.data.corpus import TextFiles
from albert_jax.data.prepare import prepare
from albert_jax.data.tokenizer import Tokenizer

if __name__ == "__main__":
    tokenizer, output, workers, *files = sys.argv[1:]
    summary = prepare(TextFiles(files), Tokenizer.load(tokenizer), output,
                      num_workers=int(workers), progress=False)
    print(sum(summary.tokens.values()))
"""


def write_corpus(documents: list[list[str]], directory: Path, size_bytes: int) -> list[Path]:
    """Files of about 10 MB holding `size_bytes` of documents, reshuffled each repetition."""
    directory.mkdir(parents=True)
    files: list[Path] = []
    written, repetition = 0, 0
    handle = None
    while written < size_bytes:
        order = list(range(len(documents)))
        random.Random(repetition).shuffle(order)
        repetition += 1
        for index in order:
            if handle is None or handle.tell() >= _FILE_BYTES:
                if handle is not None:
                    handle.close()
                files.append(directory / f"part-{len(files):04d}.txt")
                handle = open(files[-1], "w", encoding="utf-8")
            text = "\n".join(documents[index]) + "\n\n"
            handle.write(text)
            written += len(text.encode("utf-8"))
            if written >= size_bytes:
                break
    if handle is not None:
        handle.close()
    return files


def tree_rss_bytes(pid: int) -> tuple[int, int]:
    """VmRSS of `pid`, and summed over `pid` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry))
    own, total, stack = 0, 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        rss = int(line.split()[1]) * 1024
                        own = rss if current == pid else own
                        total += rss
        except OSError:
            pass  # exited between the listing and the read
    return own, total


def run_prepare(
    tokenizer: Path, files: list[Path], output: Path, workers: int
) -> tuple[int, int, float, int]:
    """Peak RSS of the main process and of the tree in bytes, seconds, tokens written."""
    start = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _PREPARE, str(tokenizer), str(output), str(workers), *files],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak_main = peak = 0
    while process.poll() is None:
        own, total = tree_rss_bytes(process.pid)
        peak_main, peak = max(peak_main, own), max(peak, total)
        time.sleep(0.02)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        raise SystemExit(f"prepare failed with exit code {process.returncode}")
    return peak_main, peak, seconds, int(process.stdout.read().strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--num-workers", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--vocab-size", type=int, default=5000)
    args = parser.parse_args()

    documents = list(BuiltinCorpus())
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        tokenizer = Tokenizer.train(
            sentences(documents), args.vocab_size, output_prefix=workdir / "spm"
        )
        print(
            f"tokenizer: vocabulary {tokenizer.vocab_size}; workers: {args.num_workers}; "
            f"cores: {os.cpu_count()}"
        )
        print(
            f"{'corpus':>10} {'files':>6} {'tokens':>12} {'seconds':>8} {'MB/s':>6} "
            f"{'peak RSS, all (MiB)':>20} {'main process (MiB)':>19}"
        )
        for run, size_mb in enumerate(args.sizes_mb):
            files = write_corpus(documents, workdir / f"corpus-{run}", size_mb << 20)
            peak_main, peak, seconds, tokens = run_prepare(
                tokenizer.path, files, workdir / f"prepared-{run}", args.num_workers
            )
            print(
                f"{size_mb:>7} MB {len(files):>6} {tokens:>12,} {seconds:>8.1f} "
                f"{size_mb / seconds:>6.2f} {peak / 2**20:>20.0f} {peak_main / 2**20:>19.0f}"
            )


if __name__ == "__main__":
    main()
