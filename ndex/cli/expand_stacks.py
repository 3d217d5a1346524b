"""`expand_stacks`: split a multipage TIFF into one TIFF per slice (optionally one set per RGB channel)."""
from __future__ import annotations

import argparse
import os
import sys

from ndex.cli.common import EXIT_OK, add_logging_flags, run_guarded, setup_logging, standalone_main
from ndex.cli.flags import flag_names
from ndex.cli.plan_argv import source_words
from ndex.jobs.formats import command_line
from ndex.sources import SourceSpec
from ndex.transfer.expand import ExpandResult, expand_stack

DESCRIPTION = "Split a multipage TIFF stack into single-slice TIFF files that ndpush can read."


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="the multipage TIFF (or OME-TIFF / ImageJ) stack to split")
    parser.add_argument("--outdir", required=True, help="directory for the slice files (created if needed)")
    parser.add_argument("--base_filename", default=None,
                        help="file name template without extension, quoted for the shell: '<p:4>' zero-padded "
                             "z, '<>' unpadded z, '<ch>' the RGB channel (r, g, b); default '<p:4>' "
                             "('<ch>/<p:4>' with --split_rgb)")
    parser.add_argument("--split_rgb", action="store_true",
                        help="write the red, green and blue channels of an RGB stack as three file sets")
    add_logging_flags(parser)


def run(args: argparse.Namespace) -> int:
    setup_logging(args.verbose, args.quiet)

    def body() -> int:
        with flag_names():
            result = expand_stack(args.input, args.outdir, base_filename=args.base_filename,
                                  split_rgb=args.split_rgb)
        print(f"wrote {result.files} files to {result.outdir}")
        for channel in result.channels:
            print(f"read back with: {read_back_command(result, channel)}")
        return EXIT_OK

    return run_guarded(body)


def read_back_command(result: ExpandResult, channel: str = "", style: str | None = None) -> str:
    """The ndpush command line (quoted for this machine's shell unless `style` says) that reads one
    channel's slices back; collection, experiment and the rest are the user's to add."""
    source = SourceSpec(datasource="local", base_path=str(result.outdir), base_filename=result.base_filename,
                        extension=result.extension, z_range=result.z_range)
    argv = ["ndpush", "--datasource", "local", *source_words(source), *(["--channel", channel] if channel else [])]
    return command_line(argv, style or ("cmd" if os.name == "nt" else "posix"))


def main(argv: list[str] | None = None) -> int:
    return standalone_main("expand_stacks", DESCRIPTION, configure, run, argv)


if __name__ == "__main__":
    sys.exit(main())
