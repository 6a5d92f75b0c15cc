"""Command line: python -m ensemble {predict,evaluate,calibrate,export-onnx,train} ..."""

from ensemble.cli import main

raise SystemExit(main())
