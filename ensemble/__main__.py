"""Command line: python -m ensemble {predict,evaluate,train} ..."""

from ensemble.cli import main

raise SystemExit(main())
