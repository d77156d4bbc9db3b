"""``python -m truncmix``: the command line (for now the ``demo`` subcommand)."""

import sys


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m truncmix demo [--seed S]\n\n"
              "  demo   fit k-means and Gaussian mixtures on scikit-learn's digits")
        return 0
    if argv[0] == "demo":
        from .demo import main as demo_main

        return demo_main(argv[1:])
    print(f"truncmix: unknown command {argv[0]!r}; try 'python -m truncmix --help'", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
