"""Running the ``hih`` command line inside a test process (shared by the test files that drive the CLI)."""

from hihlib.cli import main


def hih(capsys, *argv) -> tuple[int, str, str]:
    """Run ``hih ARGV``; (exit code, stdout, stderr). argparse's own errors exit through SystemExit."""
    capsys.readouterr()
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err
