"""The ``distgan`` subcommands: each module parses its options, calls the components that do the
work, and turns the outcome into output and an exit status. Nothing else in the package parses a
command line; ``distgan/cli.py`` maps command words to these modules."""
