# The two commands of the README. Both set up .venv first (idempotent).
.PHONY: setup demo test
setup:
	./scripts/setup.sh
demo: setup
	.venv/bin/datapool demo
test:
	./scripts/test.sh
