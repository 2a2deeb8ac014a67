.PHONY: run test setup lint bench lock audit

run:  ## set up and run the whole app (web, worker, default model)
	bash scripts/run.sh

test:  ## set up and run every test
	bash scripts/test.sh

setup:
	bash scripts/setup.sh

lint:
	.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/mypy config accounts chat chatclient moderation inference frontend api staff

lock:  ## rewrite the hashed lock files in requirements/ from pyproject.toml (commit them)
	bash scripts/lock.sh

audit:  ## known vulnerabilities in the locked Python packages and the npm packages (needs the internet)
	bash scripts/audit.sh
