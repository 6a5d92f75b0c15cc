DATA ?= ../shared/datasets/real-vs-ai
POOL ?= ../pool

.PHONY: setup lint test bench evaluate train

setup:
	python -m pip install -r requirements-dev.txt

lint:
	ruff check . && ruff format --check .

test:
	python -m pytest

bench:
	python -m benchmarks.verdict_latency

evaluate:
	python -m ensemble evaluate $(DATA) --split test --report reports/

train:
	python -m ensemble train $(DATA) $(POOL) --out weights/
